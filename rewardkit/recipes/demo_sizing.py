"""Sizing the demo to its time limit on the machine at hand, from a probe at start-up.

A CPU without native bf16 runs everything in fp32 at a fraction of the speed of one with it,
so one fixed plan cannot hold the same limit on both. At start-up we time the backbone's
forward pass on a fixed batch (a few seconds), estimate the plan's time from a calibration
run of the full plan, and, where the estimate is over the limit, train on fewer pairs (the
evaluation slices stay whole, so figures remain comparable). The plan used, the probe and the
estimate go into results.json and report.md.
"""

from __future__ import annotations

import time
from dataclasses import replace

from rewardkit.recipes.demo import FULL, QUICK, DemoPlan, work_units

LIMIT_S = {"quick": 240.0, "full": 900.0}  # the README's promises, on 2 cores
HEADROOM = 0.9  # aim under the limit: the estimate is only as good as its calibration
# Calibration, measured: the full plan fitted to 271 training pairs and 43 pre-training pairs
# (below) ran in 632 s (`rewardkit demo`, wall time, model already pulled) on a 2-core Xeon
# without native bf16 (fp32) where probe_tokens_per_s() measured 1,008 tokens/s. Estimates
# scale with rows × row length and inversely with the probe.
CALIBRATION_PLAN = replace(FULL, train_pairs=271, pretrain_pairs=43)
CALIBRATION_S = 632.0
CALIBRATION_TPS = 1008.0
CALIBRATION_COST = work_units(CALIBRATION_PLAN) * CALIBRATION_PLAN.max_length
PROBE_ROWS, PROBE_TOKENS = 4, 256


def probe_tokens_per_s(model: str) -> float:
    """Tokens per second of the backbone's forward pass, on the dtype the demo will use."""
    import torch

    from rewardkit.models.heads import decoder_of
    from rewardkit.models.loading import load_backbone

    backbone, _ = load_backbone(model)
    decoder = decoder_of(backbone)
    ids = torch.randint(10, 1000, (PROBE_ROWS, PROBE_TOKENS), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        decoder(input_ids=ids[:, :64])  # warm-up
        best = float("inf")
        for _ in range(3):  # the best of three: one pass can land on a moment of contention
            start = time.perf_counter()
            decoder(input_ids=ids)
            best = min(best, time.perf_counter() - start)
    return PROBE_ROWS * PROBE_TOKENS / best


def estimate_seconds(plan: DemoPlan, tokens_per_s: float) -> float:
    return CALIBRATION_S * (work_units(plan) * plan.max_length / CALIBRATION_COST) * (CALIBRATION_TPS / tokens_per_s)


def fit_plan(plan: DemoPlan, tokens_per_s: float, limit_s: float) -> DemoPlan:
    """`plan`, or the same plan on fewer training pairs if its estimate is over `limit_s`."""
    target = limit_s * HEADROOM
    estimate = estimate_seconds(plan, tokens_per_s)
    if estimate <= target:
        return plan
    fixed = estimate_seconds(replace(plan, train_pairs=0, pretrain_pairs=0), tokens_per_s)
    share = max(0.0, (target - fixed) / (estimate - fixed))
    return replace(plan, train_pairs=max(16, int(plan.train_pairs * share)),
                   pretrain_pairs=max(8, int(plan.pretrain_pairs * share)))


def choose_plan(quick: bool, model: str, *, fit: bool = True) -> tuple[DemoPlan, dict]:
    """(plan, sizing record): the nominal plan, fitted to the limit when `fit`."""
    nominal = QUICK if quick else FULL
    limit = LIMIT_S["quick" if quick else "full"]
    if not fit:
        return nominal, {"fitted": False, "limit_s": limit}
    tps = probe_tokens_per_s(model)
    plan = fit_plan(nominal, tps, limit)
    return plan, {"fitted": True, "limit_s": limit, "probe_tokens_per_s": round(tps, 1),
                  "estimated_s": round(estimate_seconds(plan, tps)),
                  "nominal_estimated_s": round(estimate_seconds(nominal, tps)),
                  "nominal_train_pairs": nominal.train_pairs, "shrunk": plan != nominal}
