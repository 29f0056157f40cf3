"""Atomic checkpoints: trainable weights (safetensors), optimizer/scheduler state, loop position.

A checkpoint directory is written under a temp name and renamed into place, so a crash
leaves either the previous checkpoint or the new one, never half of one. Optimizer state is
loaded with `weights_only=True` (no arbitrary unpickling). `manifest.json` records each file's
SHA-256 and each tensor's name and shape; a checkpoint is verified against it (and against the
model, and for finite weights) before anything is loaded, and a damaged one is skipped for the
intact older one that is kept beside it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rewardkit.errors import TrainingError

KEEP = 2


def checkpoint_root(output: str | Path) -> Path:
    return Path(output) / "checkpoints"


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous() for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(output, model, optimizer, scheduler, state: dict) -> Path:
    root = checkpoint_root(output)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state['step']:07d}"
    tmp = root / f".tmp-step-{state['step']:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(trainable_state(model), tmp / "trainable.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state()}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=2))  # tmp is ours, made fresh above
    weights = trainable_state(model)
    manifest = {"files": {f.name: _sha256(f) for f in sorted(tmp.iterdir())},
                "tensors": {name: list(t.shape) for name, t in weights.items()}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(root.glob("step-*"))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints_newest_first(output) -> list[Path]:
    return sorted((p for p in checkpoint_root(output).glob("step-*") if p.is_dir()), reverse=True)


FILES = ("optimizer.pt", "state.json", "trainable.safetensors")  # what every checkpoint's manifest lists


def verify_checkpoint(path: Path, model) -> None:
    """Raises CheckpointError naming the file when `path` is not a complete, intact checkpoint
    of this model: a file missing from it or from its manifest, a changed file, a tensor
    missing, extra, misshapen, of another dtype or not finite (the tensors themselves are read:
    a manifest rewritten to match damaged files does not make them pass)."""
    _verified_weights(path, model)


def _manifest_files(path: Path) -> dict:
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise CheckpointError(f"{manifest_file}: missing (an incomplete or older checkpoint)")
    try:
        manifest = json.loads(manifest_file.read_text())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not an object")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest_file}: unreadable ({exc})") from None
    unlisted = [name for name in FILES if name not in files]
    if unlisted:
        raise CheckpointError(f"{manifest_file}: does not list {', '.join(unlisted)} (a damaged manifest)")
    for name, digest in files.items():
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name}: missing")
        if _sha256(path / name) != digest:
            raise CheckpointError(f"{path / name}: its contents changed since it was written (checksum mismatch)")
    return files


def _verified_weights(path: Path, model) -> dict[str, torch.Tensor]:
    _manifest_files(path)
    weights_file = path / "trainable.safetensors"
    try:
        weights = load_file(weights_file)
    except Exception as exc:  # safetensors raises its own error type for a damaged header
        raise CheckpointError(f"{weights_file}: unreadable ({str(exc)[:200]})") from None
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing, extra = sorted(set(params) - set(weights)), sorted(set(weights) - set(params))
    if missing or extra:
        raise CheckpointError(f"{weights_file}: does not match the model's trainable tensors (missing {missing[:3]}, "
                              f"extra {extra[:3]}); was it written with other --lora/--train-layers options?")
    for name, tensor in weights.items():
        if tensor.shape != params[name].shape:
            raise CheckpointError(f"{weights_file}: tensor {name} has shape {list(tensor.shape)}, "
                                  f"the model {list(params[name].shape)}")
        if tensor.dtype != params[name].dtype:
            raise CheckpointError(f"{weights_file}: tensor {name} is {tensor.dtype}, the model's {params[name].dtype}")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{weights_file}: tensor {name} holds NaN or infinite values")
    return weights


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Everything is read and checked before anything is applied: a checkpoint that fails
    leaves the model and optimizer as they were, for the older checkpoint to be tried."""
    weights = _verified_weights(path, model)
    try:
        blob = torch.load(path / "optimizer.pt", weights_only=True)
        optimizer_state, scheduler_state, rng = blob["optimizer"], blob["scheduler"], blob["torch_rng"]
    except Exception as exc:  # weights_only refuses pickled objects: UnpicklingError, not arbitrary code
        raise CheckpointError(f"{path / 'optimizer.pt'}: unreadable ({str(exc).splitlines()[0][:200]})") from None
    try:
        state = json.loads((path / "state.json").read_text())
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            raise ValueError("no integer 'step'")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path / 'state.json'}: unreadable ({exc})") from None
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    try:
        optimizer.load_state_dict(optimizer_state)
        scheduler.load_state_dict(scheduler_state)
        torch.set_rng_state(rng)
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path / 'optimizer.pt'}: does not fit this run's optimizer ({exc})") from None
    return state


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CheckpointError(TrainingError):
    """A checkpoint that cannot be resumed from; the message names the file."""
