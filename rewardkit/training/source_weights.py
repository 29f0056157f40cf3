"""Weighting the preference sources of a batch: uniform, or MORE (Zeng et al. 2023, "On
Diversified Preferences of Large Language Model Alignment").

MORE treats each source's loss as one objective of a multi-objective problem. Every step it
takes each source's gradient of its loss with respect to the reward head (the last linear
map, on the backbone's detached features: cheap, no second backward through the model),
smooths it with momentum (g ← (1 − α)·g + α·g_step; α = 1 keeps only this step's), scales
it to unit length (`--source-normalize l2`, the paper's training command; `none` keeps the
raw lengths), and finds the weights λ on the simplex whose combination Σ λ_s ĝ_s has the
smallest norm (the min-norm point of MGDA, Sener & Koltun 2018, by pairwise Frank–Wolfe). The loss is
then Σ_s λ_s · (the sum of source s's row losses) · (sources in the batch) / rows — with λ
uniform, the plain mean.

How the weights move: at the min-norm point d = Σ λ_s ĝ_s every source with weight has the
same inner product with d (‖d‖²) and no source less — the update lowers every source's loss
at the same normalised first-order rate, the preference the sources share. So weight flows
to the source the others' mix serves least (a minority preference) and away from sources that
repeat one another; with unit-length gradients a source cannot gain weight by having a short
gradient (a noisy source whose labels cancel), and two sources always get 0.5 each. Without
the normalisation (`none`) the short gradient takes most of the weight. Weights are logged
per step (`source_weight/NAME`) and their running means saved in the training record.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch

from rewardkit.domains import PROBABILITY
from rewardkit.errors import ConfigError
from rewardkit.training.loop_config import option

MODES = ("uniform", "more")
NORMALIZATIONS = ("l2", "none")
BATCHINGS = ("shuffled", "interleaved")


def min_norm_weights(grads: torch.Tensor, iterations: int = 10_000, tolerance: float = 1e-10) -> torch.Tensor:
    """(S, D) gradients → (S,) weights on the simplex minimising ‖Σ λ_s g_s‖ (exact closed form
    for two; pairwise Frank–Wolfe on the Gram matrix otherwise, run until every weighted
    source's inner product with the combination is within `tolerance` (relative) of the
    smallest one — MGDA's optimality condition)."""
    import numpy as np

    grads = grads.double()
    count = grads.shape[0]
    if count == 1:
        return torch.ones(1, dtype=torch.float64)
    gram = (grads @ grads.T).numpy()
    if count == 2:
        a, b, c = gram[0, 0], gram[0, 1], gram[1, 1]
        denominator = a - 2 * b + c
        first = 0.5 if denominator <= 0 else float(np.clip((c - b) / denominator, 0, 1))
        return torch.tensor([first, 1 - first], dtype=torch.float64)
    weights = np.full(count, 1.0 / count)
    for _ in range(iterations):
        progress = gram @ weights  # each source's inner product with the combination
        best = int(progress.argmin())
        away = int(np.where(weights > 0, progress, -np.inf).argmax())
        gap = progress[away] - progress[best]
        if gap <= tolerance * max(float(weights @ progress), 1e-300):
            break
        curvature = gram[best, best] - 2 * gram[best, away] + gram[away, away]
        step = weights[away] if curvature <= 0 else min(gap / curvature, weights[away])
        weights[best] += step
        weights[away] -= step
    weights[weights < 1e-12] = 0.0  # rounding dust
    return torch.from_numpy(weights / weights.sum())


def check_weighting(mode: str, momentum: float, normalize: str) -> None:
    """The weighting options' values (one check for the flags and for direct use)."""
    if mode not in MODES:
        raise ConfigError(f"--source-weighting must be one of {', '.join(MODES)}, got {mode!r}")
    if not 0 < momentum <= 1:
        raise ConfigError(f"--source-momentum must be in (0, 1], got {momentum}")
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"--source-normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")


def unit_length(grad: torch.Tensor) -> torch.Tensor:
    """The gradient scaled to norm 1 (a zero gradient stays zero)."""
    norm = grad.norm()
    return grad / norm if norm > 0 else grad


@dataclass
class SourceWeightingOptions:
    """The options a method that weights its sources takes (Bradley–Terry and the judge)."""

    source_weighting: str = option("uniform", "weight the preference sources (each row's 'source', else its file) "
                                              "uniformly or by MORE's min-norm gradient weights (docs/training.md)")
    source_momentum: float = option(1.0, "MORE: momentum of each source's head gradient (1 = this step's only)",
                                    domain=PROBABILITY)
    source_normalize: str = option("l2", "MORE: scale each source's head gradient to unit length before the "
                                         "min-norm weights (l2, the paper's setting) or keep raw lengths (none)")
    source_map: str | None = option(None, "a JSON object naming sources: a data file (path, name or stem) → the "
                                          "source of its rows without a 'source' field, or a 'source' value → "
                                          "another name (to merge or rename)")
    source_batches: str = option("shuffled", "epoch order: one seeded shuffle of all rows (shuffled) or the sources "
                                             "taken in turn so each batch holds every source while it lasts "
                                             "(interleaved, as MORE's paper batches; with --batch-size)")

    def check_source_options(self) -> None:
        check_weighting(self.source_weighting, self.source_momentum, self.source_normalize)
        if self.source_batches not in BATCHINGS:
            raise ConfigError(f"--source-batches must be one of {', '.join(BATCHINGS)}, got {self.source_batches!r}")

    def source_epoch_order(self, group_key: str | None, batch_tokens: int | None = None):
        """The `epoch_order` a task takes for --source-batches (None: the loop's own shuffle)."""
        if self.source_batches == "shuffled":
            return None
        if batch_tokens:
            raise ConfigError("--source-batches interleaved needs --batch-size batches: --batch-tokens regroups rows "
                              "by length and would undo the interleaving")
        return lambda features, seed: interleaved_by_source(features, seed, group_key)


def interleaved_by_source(features: list[dict], seed: int, group_key: str | None = None) -> list[dict]:
    """Each source's rows in a seeded shuffle (features sharing `group_key` kept together), then
    the sources taken in turn, one group each, in a seeded order of sources: consecutive rows
    cycle through every source until the smaller ones run out."""
    from rewardkit.training.batching import group_spans, shuffled_groups

    by_source: dict[int, list[dict]] = {}
    for feature in features:
        by_source.setdefault(feature["source"], []).append(feature)
    generator = torch.Generator().manual_seed(seed)
    queues = []
    for source in sorted(by_source):
        ordered = shuffled_groups(by_source[source], int(torch.randint(2**31, (1,), generator=generator)), group_key)
        queues.append([[ordered[i] for i in span] for span in group_spans(ordered, group_key)])
    turn = [queues[i] for i in torch.randperm(len(queues), generator=generator).tolist()]
    out = []
    for position in range(max((len(q) for q in turn), default=0)):
        for queue in turn:
            if position < len(queue):
                out += queue[position]
    return out


class SourceWeighting:
    """Per-step source weights for one training run (`mode` uniform or more)."""

    def __init__(self, mode: str, names: list[str], momentum: float = 1.0, normalize: str = "l2"):
        check_weighting(mode, momentum, normalize)
        self.mode, self.names, self.momentum, self.normalize = mode, names, momentum, normalize
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
                stacked.append(unit_length(smoothed) if self.normalize == "l2" else smoothed)
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
        return {"mode": self.mode, "momentum": self.momentum, "normalize": self.normalize,
                "mean_weights": {self.names[s]: self._sums[s] / self._steps[s] for s in sorted(self._steps)}}


def read_source_map(path: str) -> dict[str, str]:
    """--source-map: a JSON object of names (errors name the file, and the line or the key)."""
    import json

    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--source-map {path}: cannot read it ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--source-map {path}, line {exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(mapping, dict):
        raise ConfigError(f"--source-map {path}: write one JSON object, {{\"file or source\": \"name\"}}")
    for key, name in mapping.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"--source-map {path}, key {key!r}: the name must be a non-empty string, got {name!r}")
    return mapping


def read_named_sources(read, source, source_map: str | None = None, check_keys: bool = False) -> list:
    """The records `read` gives for each part of `source`, each named by its source: the row's
    `source` field, else its file's name without the suffix; --source-map renames a file's rows
    or a source. With `check_keys` (the training data) a map key that names nothing is an error."""
    from dataclasses import replace

    from rewardkit.data.sources import is_path_like, split_source

    mapping = read_source_map(source_map) if source_map else {}
    used, out = set(), []
    for part in split_source(source):
        records = read(part)
        from_file = ""
        if is_path_like(part):
            path = Path(str(part))
            key = next((k for k in (str(part), path.name, path.stem) if k in mapping), None)
            from_file = mapping[key] if key is not None else path.stem
            used.add(key)  # None when no key named the file: never a map key
        for record in records:
            name = record.source or from_file
            if record.source in mapping:
                name = mapping[record.source]
                used.add(record.source)
            out.append(record if name == record.source else replace(record, source=name))
    unmatched = sorted(set(mapping) - used)
    if check_keys and unmatched:
        raise ConfigError(f"--source-map {source_map}: {', '.join(map(repr, unmatched))} name no data file and no "
                          "row's source")
    return out


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
