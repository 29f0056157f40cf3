"""Precision: the dtype a model's weights are held in and the autocast its forward runs under.

A trained model's scores are only reproducible if it is scored the way its training measured
it. Training picks its precision by machine (bf16 autocast over fp32 weights where the CPU or
GPU computes bf16 natively, plain fp32 elsewhere), so the precision is part of what a model
*is*: trainers write it to `rewardkit.json` (`precision`), and `load_reward_model(dtype="auto")`
scores in exactly that precision on any machine — bf16 autocast runs on a CPU without native
bf16 too, only slower. An explicit dtype ("fp32", "bf16") is the caller's choice and wins.

The autocast is entered around the decoder passes of the scoring engine and the state readers
(`autocast_of(model)`); heads always compute in fp32 (see heads.py), in training and scoring.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import torch

from rewardkit.errors import ModelError

_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
           "fp32": torch.float32, "float32": torch.float32}
_ATTRIBUTE = "rewardkit_autocast"  # set on a loaded model: the dtype its decoder runs under, or absent


@dataclass(frozen=True)
class Precision:
    weights: str = "fp32"  # the dtype the parameters are held in
    autocast: str | None = None  # "bf16": decoder passes run under torch.autocast(bf16); None: plain

    def __post_init__(self):
        if self.weights not in _DTYPES or (self.autocast is not None and self.autocast not in _DTYPES):
            raise ModelError(f"precision: unknown dtype in {self.to_dict()}; use fp32 or bf16")

    @property
    def weights_dtype(self) -> torch.dtype:
        return _DTYPES[self.weights]

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return _DTYPES[self.autocast] if self.autocast else None

    def to_dict(self) -> dict:
        return {"weights": self.weights, "autocast": self.autocast}

    @classmethod
    def from_dict(cls, data: dict) -> "Precision":
        return cls(str(data.get("weights", "fp32")), data.get("autocast"))

    def describe(self) -> str:
        return self.weights + (f" weights, {self.autocast} autocast" if self.autocast else "")


def dtype_name(dtype: torch.dtype) -> str:
    return _NAMES.get(dtype, str(dtype).replace("torch.", ""))


def bf16_supported(device: torch.device) -> bool:
    """Whether the device computes bf16 natively (a CPU with avx512_bf16 / AMX, or the GPU).
    `REWARDKIT_NATIVE_BF16=0` makes a CPU count as one without it (fp32 everywhere, as on an
    AVX2-only machine); `=1` as one with it."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    override = os.environ.get("REWARDKIT_NATIVE_BF16")
    if device.type == "cpu" and override in ("0", "1"):
        return override == "1"
    if device.type == "cpu":
        checker = getattr(torch.cpu, "_is_avx512_bf16_supported", None) or getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool(checker and checker())
    return False


def choose_dtype(requested: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """`auto` (or None): bf16 where the device computes it natively, else fp32."""
    if isinstance(requested, torch.dtype):
        return requested
    if requested in (None, "auto"):
        return torch.bfloat16 if bf16_supported(device) else torch.float32
    if requested not in _DTYPES:
        raise ModelError(f"unknown dtype '{requested}'; use auto, {', '.join(sorted(_DTYPES))}")
    return _DTYPES[requested]


def training_precision(weights: str, mixed_precision: str, device: torch.device) -> Precision:
    """What a training run computes in: --dtype for the weights, --mixed-precision for the
    autocast (`auto`: bf16 where the device computes it natively)."""
    if mixed_precision == "auto":
        mixed_precision = "bf16" if bf16_supported(device) else "no"
    return Precision(weights, "bf16" if mixed_precision == "bf16" else None)


def scoring_precision(requested, saved: dict | None, device: torch.device) -> Precision:
    """The precision to score a model in. `auto`/None: the one its training measured in
    (`saved`, from rewardkit.json), else — an untrained model — bf16 where native, else fp32.
    A `Precision` is taken as is; any other dtype means those weights and no autocast."""
    if isinstance(requested, Precision):
        return requested
    if requested in (None, "auto") and saved:
        precision = Precision.from_dict(saved)
        if precision.autocast == "bf16" and not bf16_supported(device):
            warnings.warn(f"this model was trained and measured with bf16 autocast; this {device.type} has no native "
                          "bf16, so scoring it the same way is slow. dtype='fp32' is faster but its scores differ "
                          "slightly from the ones training measured.", stacklevel=3)
        return precision
    return Precision(dtype_name(choose_dtype(requested, device)))


def set_autocast(model, precision: Precision) -> None:
    """Mark `model` so that `autocast_of(model)` runs its decoder passes in `precision`."""
    if precision.autocast_dtype is None:
        model.__dict__.pop(_ATTRIBUTE, None)
    else:
        model.__dict__[_ATTRIBUTE] = precision.autocast_dtype


def autocast_of(model):
    """The autocast context `model` was marked with (`set_autocast`), or a null context."""
    dtype = model.__dict__.get(_ATTRIBUTE)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=next(model.parameters()).device.type, dtype=dtype)
