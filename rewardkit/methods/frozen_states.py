"""Frozen-state methods: fitted on a frozen backbone's states rather than trained through the
gradient loop, and the one seeded loop they fit their heads with.

Multi-objective (ArmoRM, DMoERM) and the preference representation (LRHP) read the backbone
once per row and fit small heads on what it gives, in seconds. Such a method provides
`fit(loop, options, on_event) -> summary` instead of `task()`; `train_method` tells the two
kinds apart by that protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, runtime_checkable

import torch

from rewardkit.methods.base import MethodSpec

if TYPE_CHECKING:  # pragma: no cover
    from rewardkit.training.loop_config import LoopConfig

BatchLoss = Callable[[torch.Tensor | None, torch.Generator], torch.Tensor]


@runtime_checkable
class FrozenStateMethod(Protocol):
    name: str
    aliases: tuple[str, ...]
    kind: str
    Config: type

    def fit(self, loop: "LoopConfig", options: Any, on_event=None) -> dict: ...
    def load_scorer(self, path: str, manifest, options) -> Any: ...


class FrozenStateSpec(MethodSpec):
    """The usual way to write a frozen-state method: its config, its fitting function
    `fitter(loop, options, on_event) -> summary` and its scorer loader."""

    fitter: Any = None

    def fit(self, loop, options, on_event=None) -> dict:
        return type(self).fitter(loop, options, on_event)


def fit_head(parameters: Iterable[torch.nn.Parameter], batch_loss: BatchLoss, *, steps: int, lr: float,
             weight_decay: float, rows: int | None = None, batch: int = 64, seed: int = 0) -> list[float]:
    """AdamW over `parameters` for `steps` steps; returns the loss of each. With `rows`, each
    step draws `min(batch, rows)` row indices (with replacement, from a generator seeded by
    `seed`) and calls `batch_loss(index, generator)`; without, `batch_loss(None, generator)`
    sees the whole set. The same seed gives the same head."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(list(parameters), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in range(steps):
        index = torch.randint(rows, (min(batch, rows),), generator=generator) if rows is not None else None
        loss = batch_loss(index, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
