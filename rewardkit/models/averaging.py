"""Weight averaging against forgetting (Lin et al. 2023, "Mitigating the Alignment Tax of
RLHF": interpolating the weights before and after a fine-tune trades what is gained against
what is forgotten, and per-layer ratios do better than one).

    θ = α · θ_adapted + (1 − α) · θ_base        α = 1: the adapted model, α = 0: the base

`alpha` may differ by tensor: `layer_alphas` maps a regular expression over tensor names
(e.g. `layers\\.(0|1|2)\\.` or `embed`) to its α, the first match winning; unmatched tensors
take `alpha`. Tensors only the adapted model has (a new value head) are kept as they are.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping

import torch

from rewardkit.errors import ConfigError
from rewardkit.files import replacing


def parse_layer_alphas(items) -> dict[str, float]:
    """{REGEX: α} from `REGEX=ALPHA` strings (the `--layer-alpha` flag), in the order given."""
    out = {}
    for item in items:
        pattern, sep, value = str(item).rpartition("=")
        try:
            re.compile(pattern)
            alpha = float(value)
        except (re.error, ValueError):
            sep = ""
        if not sep or not pattern or not 0 <= alpha <= 1:
            raise ConfigError(f"--layer-alpha {item!r}: write REGEX=ALPHA with ALPHA in [0, 1], "
                              "e.g. 'layers\\.[0-5]\\.=0.3'")
        out[pattern] = alpha
    return out


def average_state_dicts(adapted: Mapping[str, torch.Tensor], base: Mapping[str, torch.Tensor], alpha: float,
                        layer_alphas: Mapping[str, float] | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """(the averaged tensors, a report: which α each tensor got, what was kept as it was)."""
    patterns = [(re.compile(pattern), float(value)) for pattern, value in (layer_alphas or {}).items()]
    for value in [alpha, *(v for _, v in patterns)]:
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ConfigError(f"--alpha / --layer-alpha: each α must be in [0, 1], got {value}")
    out, alphas, kept = {}, {}, []
    for name, tensor in adapted.items():
        if name not in base:
            out[name] = tensor
            kept.append(name)
            continue
        other = base[name]
        if other.shape != tensor.shape:
            raise ConfigError(f"weight averaging: {name} is {tuple(tensor.shape)} in the adapted model but "
                              f"{tuple(other.shape)} in the base: they are not the same architecture")
        a = next((value for pattern, value in patterns if pattern.search(name)), alpha)
        alphas[name] = a
        if not tensor.is_floating_point():
            out[name] = tensor
            continue
        mixed = a * tensor.double() + (1 - a) * other.to(tensor.device).double()
        out[name] = mixed.to(tensor.dtype)
    return out, {"alpha": alpha, "layer_alphas": dict(layer_alphas or {}), "kept_from_adapted": kept,
                 "tensors": len(alphas), "alpha_counts": _counts(alphas)}


def _counts(alphas: dict[str, float]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in alphas.values():
        counts[f"{value:g}"] = counts.get(f"{value:g}", 0) + 1
    return counts


def weight_files(directory: str | Path) -> list[Path]:
    """A model directory's full-weight safetensors files (not LoRA adapters)."""
    directory = Path(directory)
    files = sorted(p for p in directory.glob("*.safetensors") if not p.name.startswith("adapter_model"))
    if not files:
        if (directory / "adapter_model.safetensors").is_file():
            raise ConfigError(f"{directory}: holds LoRA adapters only; average a merged model (train with "
                              "--merge-lora) so that there are whole weights to interpolate")
        raise ConfigError(f"{directory}: no *.safetensors weights to average")
    return files


def read_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors: dict[str, torch.Tensor] = {}
    for path in weight_files(directory):
        tensors.update(load_file(str(path)))
    return tensors


def average_directory(adapted_dir: str | Path, base_dir: str | Path, alpha: float,
                      layer_alphas: Mapping[str, float] | None = None) -> dict:
    """Replace the adapted directory's weights by their average with the base's, file by file
    (each file written whole or not at all); returns the report."""
    from safetensors.torch import load_file, save

    base = read_weights(base_dir)
    report: dict = {}
    for path in weight_files(adapted_dir):
        averaged, part = average_state_dicts(load_file(str(path)), base, alpha, layer_alphas)
        with replacing(path, "wb") as handle:
            handle.write(save({k: v.contiguous() for k, v in averaged.items()}, metadata={"format": "pt"}))
        report = _merged_report(report, part)
    report["base"] = str(base_dir)
    return report


def _merged_report(total: dict, part: dict) -> dict:
    if not total:
        return part
    total["kept_from_adapted"] += part["kept_from_adapted"]
    total["tensors"] += part["tensors"]
    for key, count in part["alpha_counts"].items():
        total["alpha_counts"][key] = total["alpha_counts"].get(key, 0) + count
    return total


def average_into(adapted_dir: str | Path, base_dir: str | Path, output_dir: str | Path, alpha: float,
                 layer_alphas: Mapping[str, float] | None = None) -> dict:
    """A new model directory: the adapted one's files (config, tokenizer, rewardkit.json) with its
    weights averaged with the base's and the report in `averaging.json`. Built under a temporary
    name beside OUTPUT and renamed into place, so OUTPUT is whole or absent; the two inputs are
    only read, and an existing OUTPUT is refused rather than overwritten."""
    import json
    import shutil
    import tempfile

    adapted_dir, output_dir = Path(adapted_dir), Path(output_dir)
    if output_dir.exists():  # the inputs among them: they are never written
        raise ConfigError(f"--output {output_dir}: already exists; give a new directory (nothing is overwritten)")
    for directory in (adapted_dir, base_dir):  # both hold whole weights, checked before anything is copied
        weight_files(directory)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        built = temp / "model"
        shutil.copytree(adapted_dir, built, ignore=shutil.ignore_patterns("checkpoints"))
        report = {"adapted": str(adapted_dir), **average_directory(built, base_dir, alpha, layer_alphas)}
        (built / "averaging.json").write_text(json.dumps(report, indent=2))
        built.rename(output_dir)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return report
