"""Scoring one job on several processes: `torchrun --nproc_per_node N -m rewardkit.cli.main score …`.

Inside `sharded_scoring()` the engine plans its batches exactly as one process would (the same
prefix groups, the same length-sorted token-budget batches), hands whole batches to the
processes balanced by token count, and gathers every score back in input order on every
process — so each row is computed in the batch it would have been in alone, and the numbers
do not depend on the number of processes. Outside the context nothing is shared: processes
that score their own rows (an RL trainer's ranks calling a reward function) never wait for
each other.

The processes meet through torch.distributed (gloo on CPUs, NCCL on GPUs), from the
environment torchrun or accelerate sets; only rank 0 writes files and draws progress.
"""

from __future__ import annotations

import contextlib
import contextvars
import os

import torch
import torch.distributed as dist

_ACTIVE = contextvars.ContextVar("rewardkit_sharded_scoring", default=False)


def launched_size() -> int:
    """How many processes the launcher started (1 without torchrun / accelerate launch)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_writer() -> bool:
    """Whether this process writes outputs: rank 0, or the only process."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


@contextlib.contextmanager
def sharded_scoring():
    """Scoring inside shares its batches among the launched processes (joining them first)."""
    if launched_size() > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def joined() -> bool:
    """Whether this process is one of several in a process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def from_writer(value):
    """Rank 0's `value` on every process (a decision one process makes for all: reuse saved
    verdicts or score again); `value` itself in one process."""
    if not joined():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wait_for_writer() -> None:
    """Every process waits here until all arrive (after rank 0 wrote what the others read next)."""
    if joined():
        dist.barrier()


def active_shards() -> tuple[int, int] | None:
    """(rank, number of processes) when scoring is being shared, else None."""
    if not _ACTIVE.get() or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return dist.get_rank(), dist.get_world_size()


def balance(costs: list[int], parts: int) -> list[list[int]]:
    """Indices of `costs` split into `parts` lists of nearly equal total cost: the largest first,
    each to the least loaded part (ties: the lowest part). Deterministic, so every process
    computes the same split."""
    loads, assignment = [0] * parts, [[] for _ in range(parts)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        part = min(range(parts), key=lambda p: (loads[p], p))
        assignment[part].append(index)
        loads[part] += costs[index]
    return [sorted(indices) for indices in assignment]


def gather(results: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """Every process's {request index: score}, merged (every process gets all of them)."""
    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, {i: t.cpu() for i, t in results.items()})
    merged: dict[int, torch.Tensor] = {}
    for part in everyone:
        merged.update(part)
    return merged
