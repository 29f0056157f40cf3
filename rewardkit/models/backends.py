"""Inference backends for the decoder pass that scoring spends its time in.

Every backend is one callable: input_ids (B, T) → the final hidden states (B, T, H) in fp32,
rows right-padded (causal attention keeps a row's real positions blind to the padding after
it). The reward heads stay in PyTorch, so every backend serves the judge, the Bradley–Terry
model and the multi-objective model alike.

  eager          PyTorch as loaded: the reference path (and the only one with the KV cache
                 that shared-prefix scoring uses)
  onnx           the decoder exported once to ONNX (torch.onnx, dynamo exporter) and run by
                 ONNX Runtime                                  [extra: rewardkit[cpu]]
  openvino       the same ONNX graph compiled by OpenVINO, fp32      [extra: rewardkit[cpu]]
  openvino-int8  OpenVINO with 8-bit weight compression (NNCF)        [extra: rewardkit[cpu]]
  int8           torchao dynamic int8 activations and weights on the decoder's linear layers
                                                                      [extra: rewardkit[cpu]]
  compile        torch.compile of the decoder (dynamic shapes; compiles C++ on first use)
  auto           what bench/cpu_backends.py measured best on this kind of machine: eager
                 so far (see `choose_backend`)

Exported graphs are cached under ~/.cache/rewardkit/exports, keyed by a digest of the weights.
Which one wins, by how much, and whether its verdicts agree with eager fp32 is measured by
bench/cpu_backends.py; the README has the figures.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import torch

from rewardkit.errors import ConfigError
from rewardkit.models.heads import decoder_of

BACKENDS = ("eager", "onnx", "openvino", "openvino-int8", "int8", "compile")
EXTRA = "pip install 'rewardkit[cpu]'"

Decoder = Callable[[torch.Tensor], torch.Tensor]


class _HiddenStates(torch.nn.Module):
    """The decoder as a plain module: input_ids → last_hidden_state (what gets exported)."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, input_ids):
        return self.decoder(input_ids=input_ids, use_cache=False).last_hidden_state


def choose_backend(requested: str = "auto") -> str:
    """`auto` is eager PyTorch on every machine measured so far: on the fp32 CPU (no native
    bf16) every other backend was slower than eager's fused attention and shared-prefix cache
    (bench/cpu_backends.py, README "CPU backends"), and on a bf16 CPU or a GPU the model runs
    in bf16, where none of the fp32 backends applies. A backend is named explicitly to use it."""
    if requested == "auto":
        return "eager"
    if requested not in BACKENDS:
        raise ConfigError(f"--backend must be auto or one of {', '.join(BACKENDS)}, got {requested!r}")
    return requested


def build_decoder(model, backend: str, *, cache_dir: str | Path | None = None) -> Decoder | None:
    """The decoder pass of `model` on `backend`; None for eager (callers keep their own path)."""
    backend = choose_backend(backend)
    if backend == "eager":
        return None
    if next(model.parameters()).dtype != torch.float32 or next(model.parameters()).device.type != "cpu":
        raise ConfigError(f"--backend {backend} runs fp32 models on the CPU; load with --dtype fp32 "
                          "(or use --backend eager)")
    module = _HiddenStates(decoder_of(model)).eval()
    if backend == "compile":
        compiled = torch.compile(module, dynamic=True)
        return _no_grad(compiled)
    if backend == "int8":
        return _no_grad(_torchao_int8(module))
    onnx_file = _exported(module, Path(cache_dir) if cache_dir else _cache_root())
    if backend == "onnx":
        return _onnxruntime(onnx_file)
    return _openvino(onnx_file, compress=backend == "openvino-int8")


def _no_grad(module) -> Decoder:
    def run(input_ids: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(input_ids).float()
    return run


def _installed(*modules: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules)


def _require(backend: str, *modules: str) -> None:
    missing = [m for m in modules if not _installed(m)]
    if missing:
        raise ConfigError(f"--backend {backend} needs {', '.join(missing)}: {EXTRA}")


def _cache_root() -> Path:
    return Path(os.environ.get("REWARDKIT_CACHE", Path.home() / ".cache" / "rewardkit")) / "exports"


def weights_digest(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().contiguous().view(torch.uint8).numpy().tobytes()[:: max(1, tensor.numel() // 4096)])
    return digest.hexdigest()[:20]


def _exported(module: _HiddenStates, root: Path) -> Path:
    """The decoder as an ONNX file, exported once per weights (atomically)."""
    _require("onnx", "onnx", "onnxscript")
    target = root / weights_digest(module) / "decoder.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / "partial"
    partial.mkdir(exist_ok=True)
    example = torch.ones(2, 24, dtype=torch.long)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(partial / "decoder.onnx"), dynamo=True, external_data=True,
                          input_names=["input_ids"], output_names=["hidden"],
                          dynamic_shapes={"input_ids": {0: batch, 1: length}})
    for item in partial.iterdir():  # the graph and its external weights
        os.replace(item, target.parent / item.name)
    partial.rmdir()
    return target


def _onnxruntime(onnx_file: Path) -> Decoder:
    _require("onnx", "onnxruntime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def run(input_ids: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"input_ids": input_ids.cpu().numpy()})[0])
    return run


def _openvino(onnx_file: Path, *, compress: bool) -> Decoder:
    backend = "openvino-int8" if compress else "openvino"
    _require(backend, "openvino", *(("nncf",) if compress else ()))
    import openvino as ov

    core = ov.Core()
    graph = core.read_model(str(onnx_file))
    if compress:
        import nncf

        graph = nncf.compress_weights(graph)  # 8-bit weights, activations stay fp32
    compiled = core.compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                 "INFERENCE_NUM_THREADS": torch.get_num_threads()})

    def run(input_ids: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(compiled({"input_ids": input_ids.cpu().numpy()})[0].copy())
    return run


def _torchao_int8(module: _HiddenStates):
    _require("int8", "torchao")
    import copy

    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantized = copy.deepcopy(module)
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig())
    return quantized


def apply_backend(scorer, backend: str) -> str:
    """Switch a loaded scorer's decoder pass to `backend` (its engine or state reader); returns
    the backend used. Backends other than eager have no KV cache, so shared-prefix caching
    is turned off with them."""
    backend = choose_backend(backend)
    decoder = build_decoder(scorer.model, backend)
    for part in (getattr(scorer, "engine", None), getattr(scorer, "reader", None)):
        if part is not None:
            part.decoder = decoder
            if decoder is not None and hasattr(part, "use_prefix_cache"):
                part.use_prefix_cache = False
    scorer.backend = backend
    return backend
