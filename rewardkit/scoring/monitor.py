"""An over-optimisation monitor for a reward model inside an RL loop.

A policy that learns to please a reward model finds its habits: longer answers, the answer
position a judge prefers, answers a verifier refutes but the model likes. `RewardMonitor`
watches the rewards an adapter hands out and reports, per call, over a sliding window of the
latest `window` rows:

  reward/mean, reward/std          the rewards themselves
  length_spearman                  Spearman ρ of reward with response length (characters)
  order_disagreement               share of judged rows whose two presentation orders disagree
  verifier_disagreement            1 − AUC of the model's reward separating verified from
                                   refuted rows (0 = the model agrees with every verdict,
                                   0.5 = it ignores them); scale-free, so it holds for
                                   pointwise and pairwise models alike
  calibration_drift                mean |Δ reward| on a fixed calibration set, re-scored every
                                   `every` calls, against its first scoring

A metric past its threshold (`MonitorThresholds`, documented in docs/monitoring.md) *trips*
the monitor once the window holds `min_rows` rows: a warning names the metric, its value and
the threshold, and the policy applies while it stays tripped:
  warn   rewards unchanged (the default)
  clip   rewards clipped to the 5th–95th percentile of the first `min_rows` rewards (the
         baseline, taken before the policy could move them)
  hold   every reward is the baseline mean: the advantages vanish, so the policy stops moving
         along this reward until the metrics recover
Metrics are computed on the raw rewards, never on what a policy made of them.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import deque
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

from rewardkit.errors import ConfigError
from rewardkit.statistics import spearman

POLICIES = ("warn", "clip", "hold")
METRICS = ("reward/mean", "reward/std", "length_spearman", "order_disagreement", "verifier_disagreement",
           "calibration_drift", "tripped")


@dataclass(frozen=True)
class AuditedRow:
    """One reward with what stands behind it, for the monitor."""

    reward: float
    p_ab: float | None = None  # a judge's P(response better) with the response shown first
    p_ba: float | None = None  # … with it shown second
    passed: bool | None = None  # a verifier's verdict (None: it could not decide, or none ran)
    model_reward: float | None = None  # the learned model's own reward where a verifier decided

    @property
    def orders_disagree(self) -> bool | None:
        if self.p_ab is None or self.p_ba is None:
            return None
        return (self.p_ab > 0.5) != (self.p_ba > 0.5)


@dataclass(frozen=True)
class MonitorThresholds:
    length_spearman: float = 0.5  # |ρ| of reward with length above this trips
    order_disagreement: float = 0.3
    verifier_disagreement: float = 0.35
    calibration_drift: float = 0.5  # in reward units (log-odds for a judge)

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"monitor threshold {name} must be a number ≥ 0, got {value!r}")


class RewardMonitor:
    def __init__(self, *, window: int = 64, min_rows: int = 32, thresholds: MonitorThresholds = MonitorThresholds(),
                 policy: str = "warn", calibration: Callable[[], Sequence[float]] | None = None, every: int = 0,
                 prefix: str = "rewardkit/"):
        if policy not in POLICIES:
            raise ConfigError(f"monitor policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        if window < 2 or not 2 <= min_rows <= window or every < 0:
            raise ConfigError(f"monitor: need window ≥ 2, 2 ≤ min_rows ≤ window and every ≥ 0; got window={window}, "
                              f"min_rows={min_rows}, every={every}")
        self.window, self.min_rows, self.thresholds, self.policy = window, min_rows, thresholds, policy
        self.calibration, self.every, self.prefix = calibration, every, prefix
        self._rows: deque[tuple[AuditedRow, int]] = deque(maxlen=window)
        self._baseline: list[float] = []
        self._calibration_start: np.ndarray | None = None
        self.calls = 0
        self.tripped: list[str] = []  # the metrics past their thresholds after the latest call
        self.trips = 0  # how many times the monitor went from quiet to tripped
        self.latest: dict[str, float] = {}
        self._lock = threading.Lock()  # verl and OpenRLHF call from many threads

    def observe(self, rows: Sequence[AuditedRow], lengths: Sequence[int]) -> dict[str, float]:
        """Record one call's rows (and each response's length); the metrics over the window."""
        if len(rows) != len(lengths):
            raise ValueError(f"monitor: {len(rows)} rows for {len(lengths)} lengths")
        with self._lock:
            return self._observe(rows, lengths)

    def fixed_metrics(self, missing: float = math.nan) -> dict[str, float]:
        """The latest metrics under every name, `missing` (NaN; 0.0 over JSON, which has no NaN)
        for one not measured yet: for frameworks that need the same keys on every sample
        (verl's reward extras, OpenRLHF's extra_logs)."""
        return {self.prefix + name: self.latest.get(self.prefix + name, missing) for name in METRICS}

    def _observe(self, rows: Sequence[AuditedRow], lengths: Sequence[int]) -> dict[str, float]:
        self.calls += 1
        usable = [(row, length) for row, length in zip(rows, lengths) if row.reward is not None
                  and math.isfinite(row.reward)]
        self._rows.extend(usable)
        if len(self._baseline) < self.min_rows:
            self._baseline.extend(row.reward for row, _ in usable[:self.min_rows - len(self._baseline)])
        metrics = self._metrics()
        was_tripped = bool(self.tripped)
        self.tripped = self._past_thresholds(metrics) if len(self._rows) >= self.min_rows else []
        if self.tripped and not was_tripped:
            self.trips += 1
            detail = ", ".join(f"{name} = {metrics[name]:.3f} (threshold {getattr(self.thresholds, name)})"
                               for name in self.tripped)
            warnings.warn(f"rewardkit monitor: the reward may be over-optimised: {detail}; policy {self.policy}",
                          RewardHackingWarning, stacklevel=3)
        metrics["tripped"] = float(bool(self.tripped))
        self.latest = {self.prefix + name: value for name, value in metrics.items()}
        return self.latest

    def apply(self, rewards: Sequence[float | None]) -> list[float | None]:
        """The rewards after the policy (unchanged unless tripped under clip or hold)."""
        with self._lock:
            return self._apply(rewards)

    def _apply(self, rewards: Sequence[float | None]) -> list[float | None]:
        if not self.tripped or self.policy == "warn" or len(self._baseline) < self.min_rows:
            return list(rewards)
        base = np.asarray(self._baseline)
        if self.policy == "hold":
            held = float(base.mean())
            return [None if r is None else held for r in rewards]
        low, high = (float(q) for q in np.quantile(base, [0.05, 0.95]))
        return [None if r is None else min(max(float(r), low), high) for r in rewards]

    def _metrics(self) -> dict[str, float]:
        rows = [row for row, _ in self._rows]
        rewards = np.asarray([row.reward for row in rows], dtype=float)
        metrics = {"reward/mean": float(rewards.mean()) if len(rows) else 0.0,
                   "reward/std": float(rewards.std()) if len(rows) else 0.0}
        rho = spearman(rewards, [length for _, length in self._rows]) if len(rows) >= 3 else None
        metrics["length_spearman"] = 0.0 if rho is None else rho
        judged = [row.orders_disagree for row in rows if row.orders_disagree is not None]
        if judged:
            metrics["order_disagreement"] = sum(judged) / len(judged)
        disagreement = verifier_disagreement(rows)
        if disagreement is not None:
            metrics["verifier_disagreement"] = disagreement
        drift = self._calibration_drift()
        if drift is not None:
            metrics["calibration_drift"] = drift
        return metrics

    def _calibration_drift(self) -> float | None:
        if self.calibration is None or self.every == 0:
            return None
        if self._calibration_start is not None and (self.calls - 1) % self.every:
            return self.latest.get(self.prefix + "calibration_drift")
        scores = np.asarray(list(self.calibration()), dtype=float)
        if self._calibration_start is None:
            self._calibration_start = scores
        return float(np.abs(scores - self._calibration_start).mean())

    def _past_thresholds(self, metrics: dict[str, float]) -> list[str]:
        past = []
        for name in ("length_spearman", "order_disagreement", "verifier_disagreement", "calibration_drift"):
            value = metrics.get(name)
            if value is not None and abs(value) > getattr(self.thresholds, name):
                past.append(name)
        return past


class RewardHackingWarning(UserWarning):
    """The monitor saw a reward metric past its threshold."""


def verifier_disagreement(rows: Sequence[AuditedRow]) -> float | None:
    """1 − AUC of the model's reward separating verified from refuted rows (ties count half);
    None until both kinds are present."""
    passed = [row.model_reward for row in rows if row.passed is True and row.model_reward is not None]
    failed = [row.model_reward for row in rows if row.passed is False and row.model_reward is not None]
    if not passed or not failed:
        return None
    good, bad = np.asarray(passed)[:, None], np.asarray(failed)[None, :]
    auc = float(((good > bad) + 0.5 * (good == bad)).mean())
    return 1.0 - auc


def audited_rewards(scorer, prompts, responses, references=None) -> list[AuditedRow]:
    """Rewards (the log-odds scale of `reward`) with what the monitor reads beside them: a
    composite's verdicts and model rewards, a judge's two orders against the reference."""
    from rewardkit.scoring.protocol import to_scale

    if hasattr(scorer, "audited"):
        return list(scorer.audited(prompts, responses, references))
    if references is not None and hasattr(scorer, "reference_details"):
        details = scorer.reference_details(prompts, responses, references)
        return [AuditedRow(to_scale(d.probability, "logodds"), d.p_ab, d.p_ba) for d in details]
    return [AuditedRow(float(r)) for r in scorer.reward(prompts, responses, references)]


def monitor_from_env(environ) -> RewardMonitor | None:
    """REWARDKIT_MONITOR=warn|clip|hold turns a monitor on in the adapters that read the
    environment (verl, OpenRLHF's Python-file reward); REWARDKIT_MONITOR_WINDOW (64) and
    REWARDKIT_MONITOR_MIN_ROWS (32) size it."""
    policy = environ.get("REWARDKIT_MONITOR")
    if not policy:
        return None
    try:
        window = int(environ.get("REWARDKIT_MONITOR_WINDOW", "64"))
        min_rows = int(environ.get("REWARDKIT_MONITOR_MIN_ROWS", str(min(32, window))))
    except ValueError as exc:
        raise ConfigError(f"REWARDKIT_MONITOR_WINDOW / REWARDKIT_MONITOR_MIN_ROWS: {exc}") from None
    return RewardMonitor(window=window, min_rows=min_rows, policy=policy)
