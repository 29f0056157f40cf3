"""Weighting the preference sources of a batch: uniform, or MORE (Zeng et al. 2023, "On
Diversified Preferences of Large Language Model Alignment").

MORE treats each source's loss as one objective of a multi-objective problem. Every step it
takes each source's gradient of its loss with respect to the reward head (the last linear
map, on the backbone's detached features: cheap, no second backward through the model),
smooths it with momentum (g ← (1 − α)·g + α·g_step; α = 1 keeps only this step's), and finds
the weights λ on the simplex whose combination Σ λ_s g_s has the smallest norm (the min-norm
point of MGDA, Sener & Koltun 2018, by Frank–Wolfe). The loss is then Σ_s λ_s · (the sum of
source s's row losses) · (sources in the batch) / rows — with λ uniform, the plain mean.

The min-norm point leans on the direction the sources share: a source whose gradient points
elsewhere (disagreeing labels) gets less weight, a source whose loss is already low and whose
gradient is small gets more. Weights are logged per step (`source_weight/NAME`) and their
running means saved in the training record.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch

from rewardkit.domains import PROBABILITY
from rewardkit.errors import ConfigError
from rewardkit.training.loop_config import option

MODES = ("uniform", "more")


def min_norm_weights(grads: torch.Tensor, iterations: int = 250, tolerance: float = 1e-8) -> torch.Tensor:
    """(S, D) gradients → (S,) weights on the simplex minimising ‖Σ λ_s g_s‖ (Frank–Wolfe on
    the Gram matrix; exact closed form for two)."""
    grads = grads.double()
    count = grads.shape[0]
    if count == 1:
        return torch.ones(1, dtype=torch.float64)
    gram = grads @ grads.T
    if count == 2:
        a, b, c = gram[0, 0], gram[0, 1], gram[1, 1]
        denominator = a - 2 * b + c
        first = torch.tensor(0.5, dtype=torch.float64) if denominator <= 0 else ((c - b) / denominator).clamp(0, 1)
        return torch.stack([first, 1 - first])
    weights = torch.full((count,), 1.0 / count, dtype=torch.float64)
    for _ in range(iterations):
        direction = gram @ weights
        best = int(direction.argmin())
        vertex = torch.zeros_like(weights)
        vertex[best] = 1.0
        step_direction = vertex - weights
        curvature = step_direction @ gram @ step_direction
        if curvature <= 0:
            break
        step = float((-(step_direction @ gram @ weights) / curvature).clamp(0, 1))
        if step < tolerance:
            break
        weights = weights + step * step_direction
    return weights


@dataclass
class SourceWeightingOptions:
    """The options a method that weights its sources takes (Bradley–Terry and the judge)."""

    source_weighting: str = option("uniform", "weight the preference sources (each row's 'source', else its file) "
                                              "uniformly or by MORE's min-norm gradient weights (docs/training.md)")
    source_momentum: float = option(1.0, "MORE: momentum of each source's head gradient (1 = this step's only)",
                                    domain=PROBABILITY)

    def check_source_options(self) -> None:
        if self.source_weighting not in MODES:
            raise ConfigError(f"--source-weighting must be one of {', '.join(MODES)}, got {self.source_weighting!r}")
        if self.source_momentum <= 0:
            raise ConfigError(f"--source-momentum must be in (0, 1], got {self.source_momentum}")


class SourceWeighting:
    """Per-step source weights for one training run (`mode` uniform or more)."""

    def __init__(self, mode: str, names: list[str], momentum: float = 1.0):
        if mode not in MODES:
            raise ConfigError(f"--source-weighting must be one of {', '.join(MODES)}, got {mode!r}")
        if not 0 < momentum <= 1:
            raise ConfigError(f"--source-momentum must be in (0, 1], got {momentum}")
        self.mode, self.names, self.momentum = mode, names, momentum
        self._smoothed: dict[int, torch.Tensor] = {}
        self._sums: dict[int, float] = defaultdict(float)
        self._steps: dict[int, int] = defaultdict(int)
        self.latest: dict[str, float] = {}

    def loss(self, row_losses: torch.Tensor, sources: torch.Tensor, row_grads: torch.Tensor | None) -> torch.Tensor:
        """The weighted loss of a batch: `row_losses` (N,), `sources` (N,) source indices,
        `row_grads` (N, D) each row's gradient of its loss with respect to the head (MORE only)."""
        present = sorted(set(sources.tolist()))
        if self.mode == "uniform" or len(present) == 1 or row_grads is None:
            weights = {s: 1.0 / len(present) for s in present}
        else:
            stacked = []
            for source in present:
                grad = row_grads[sources == source].double().mean(0).detach().cpu()
                previous = self._smoothed.get(source)
                smoothed = grad if previous is None else (1 - self.momentum) * previous + self.momentum * grad
                self._smoothed[source] = smoothed
                stacked.append(smoothed)
            solved = min_norm_weights(torch.stack(stacked))
            weights = {s: float(w) for s, w in zip(present, solved)}
        self._record(weights)
        scale = torch.zeros_like(row_losses)
        for source, weight in weights.items():
            scale[sources == source] = weight
        return (row_losses * scale).sum() * len(present) / row_losses.shape[0]

    def _record(self, weights: dict[int, float]) -> None:
        self.latest = {f"source_weight/{self.names[s]}": w for s, w in weights.items()}
        for source, weight in weights.items():
            self._sums[source] += weight
            self._steps[source] += 1

    def summary(self) -> dict:
        """Each source's mean weight over the steps it appeared in (what the training record saves)."""
        return {"mode": self.mode, "momentum": self.momentum,
                "mean_weights": {self.names[s]: self._sums[s] / self._steps[s] for s in sorted(self._steps)}}


class SourceIndex:
    """Source names ↔ small integers, for batches (a pair's `source`; "" is named "unnamed")."""

    def __init__(self):
        self.names: list[str] = []
        self._index: dict[str, int] = {}

    def of(self, pair) -> int:
        name = getattr(pair, "source", "") or "unnamed"
        if name not in self._index:
            self._index[name] = len(self.names)
            self.names.append(name)
        return self._index[name]


def per_source_metrics(p_chosen: list[float], sources: list[int], names: list[str]) -> dict:
    """Held-out accuracy and expected calibration error, overall and per source (when there
    are several): eval_ece, eval_accuracy/NAME, eval_ece/NAME."""
    from rewardkit.statistics import expected_calibration_error

    out = {"eval_ece": expected_calibration_error(p_chosen)}
    present = sorted(set(sources))
    if len(present) > 1:
        for source in present:
            mine = [p for p, s in zip(p_chosen, sources) if s == source]
            out[f"eval_accuracy/{names[source]}"] = sum(p > 0.5 for p in mine) / len(mine)
            out[f"eval_ece/{names[source]}"] = expected_calibration_error(mine)
    return out
