"""Sharded checkpoints for FSDP runs: every process writes its own shard of the weights and
optimizer state (`torch.distributed.checkpoint`), nobody gathers the whole model.

Atomic and verified like the single-process ones (training/checkpoint.py): all processes
write into `.tmp-step-N`, wait for each other, and rank 0 then writes `manifest.json` (the
SHA-256 of every file) and renames the directory into place — a process killed at any point
leaves the previous checkpoint intact and no directory that looks complete. On resume every
file is checked against the manifest first. Shards are re-split on load, so a run may resume
with another number of processes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import torch.distributed as dist

from rewardkit.training.checkpoint import KEEP, CheckpointError, _sha256, checkpoint_root

MANIFEST, STATE = "manifest.json", "state.json"


def _states(model, optimizer):
    from torch.distributed.checkpoint.state_dict import get_state_dict

    return get_state_dict(model, optimizer)


def save_sharded_checkpoint(output, model, optimizer, scheduler, state: dict) -> Path:
    """Every process calls this; returns the checkpoint directory."""
    import torch.distributed.checkpoint as dcp

    root = checkpoint_root(output)
    final, tmp = root / f"step-{state['step']:07d}", root / f".tmp-step-{state['step']:07d}"
    rank = dist.get_rank()
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    dist.barrier()
    model_state, optimizer_state = _states(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(tmp))
    torch.save({"scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state()}, tmp / f"rank-{rank}.pt")
    dist.barrier()
    if rank == 0:
        (tmp / STATE).write_text(json.dumps({**state, "world_size": dist.get_world_size()}, indent=2))
        files = {f.name: _sha256(f) for f in sorted(tmp.iterdir()) if f.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"files": files, "sharded": True}, indent=1))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in sorted(root.glob("step-*"))[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return final


def verify_sharded_checkpoint(path: Path) -> dict:
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise CheckpointError(f"{manifest_file}: missing (an incomplete or older checkpoint)")
    try:
        manifest = json.loads(manifest_file.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest_file}: unreadable ({exc})") from None
    if not manifest.get("sharded"):
        raise CheckpointError(f"{path}: a single-process checkpoint; resume it without --fsdp")
    if not isinstance(files, dict) or any(name not in files for name in (STATE, ".metadata", "rank-0.pt")):
        raise CheckpointError(f"{manifest_file}: does not list {STATE}, .metadata and rank-0.pt (a damaged manifest)")
    for name, digest in files.items():
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name}: missing")
        if _sha256(path / name) != digest:
            raise CheckpointError(f"{path / name}: its contents changed since it was written (checksum mismatch)")
    return json.loads((path / STATE).read_text())


def load_sharded_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Every process calls this; the weights and optimizer state are re-split over this run's processes."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_state_dict

    state = verify_sharded_checkpoint(path)
    model_state, optimizer_state = _states(model, optimizer)
    loaded = {"model": model_state, "optimizer": optimizer_state}
    try:
        dcp.load(loaded, checkpoint_id=str(path))
    except Exception as exc:  # a checkpoint of another model: DCP names the missing keys
        raise CheckpointError(f"{path}: does not match this model ({str(exc).splitlines()[0][:300]})") from None
    set_state_dict(model, optimizer, model_state_dict=loaded["model"], optim_state_dict=loaded["optimizer"])
    rank_file = path / f"rank-{dist.get_rank()}.pt"
    blob = torch.load(rank_file if rank_file.is_file() else path / "rank-0.pt", weights_only=True)
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["torch_rng"])
    state.pop("world_size", None)
    return state
