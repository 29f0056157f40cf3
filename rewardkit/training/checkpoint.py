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
    (tmp / "state.json").write_text(json.dumps(state, indent=2))
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


def verify_checkpoint(path: Path, model) -> None:
    """Raises CheckpointError naming the file when `path` is not a complete, intact checkpoint
    of this model: a missing or changed file, a tensor missing, misshapen or not finite."""
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise CheckpointError(f"{manifest_file}: missing (an incomplete or older checkpoint)")
    try:
        manifest = json.loads(manifest_file.read_text())
        files, shapes = manifest["files"], manifest["tensors"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest_file}: unreadable ({exc})") from None
    for name, digest in files.items():
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name}: missing")
        if _sha256(path / name) != digest:
            raise CheckpointError(f"{path / name}: its contents changed since it was written (checksum mismatch)")
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing = sorted(set(params) - set(shapes))
    if missing or set(shapes) - set(params):
        raise CheckpointError(f"{path}: does not match the model's trainable tensors (e.g. missing {missing[:3]}); "
                              "was it written with other --lora/--train-layers options?")
    for name, shape in shapes.items():
        if list(params[name].shape) != shape:
            raise CheckpointError(f"{path}: tensor {name} has shape {shape}, the model {list(params[name].shape)}")


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    verify_checkpoint(path, model)
    weights = load_file(path / "trainable.safetensors")
    bad = [name for name, t in weights.items() if not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{path / 'trainable.safetensors'}: tensor {bad[0]} holds NaN or infinite values")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    blob = torch.load(path / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["torch_rng"])
    return json.loads((path / "state.json").read_text())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CheckpointError(TrainingError):
    """A checkpoint that cannot be resumed from; the message names the file."""
