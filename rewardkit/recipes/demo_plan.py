"""The demo's plan: what it trains and scores (`DemoPlan`, the full and quick plans, the slices
of the bundled pairs), and its sizing to the time limit on the machine at hand, from a probe
at start-up.

A CPU without native bf16 runs everything in fp32 at a fraction of the speed of one with it,
so one fixed plan cannot hold the same limit on both. At start-up we time the backbone's
forward pass on a fixed batch (a few seconds), estimate the plan's time from a calibration
run of the full plan, and, where the estimate is over the limit, train on fewer pairs (the
evaluation slices stay whole, so figures remain comparable). The plan used, the probe and the
estimate go into results.json and report.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from importlib import resources


@dataclass(frozen=True)
class DemoPlan:
    train_pairs: int  # labeled pairs: judge fine-tuning and the BT baseline train on the same ones
    pretrain_pairs: int  # stage 1 reads the first of these with their labels dropped
    eval_pairs: int  # the held-out slice: UltraFeedback "eval" pairs, never trained on
    ood_pairs: int  # LLMBar "Natural" pairs, reported beside it as out-of-domain
    finetune_epochs: float
    pretrain_epochs: float
    bt_epochs: float
    # Whole rows: every slice takes only pairs whose judge row (question + both answers) fits in
    # max_length, so nothing is cut in training or scoring; scoring runs at the model's own limit.
    max_length: int = 768
    bt_max_length: int = 768  # BT rows: question + one answer (whole whenever the judge row fits)
    batch_size: int = 8
    batch_tokens: int | None = 8 * 512  # judge batches by a token budget, rows of similar length together
    train_layers: int = 6  # of SmolLM2's 30 blocks; the 24 below run once per row (--cache-frozen)
    lr: float = 1e-4


# Sized to the time limits on 2 CPU cores (the sizing below fits them to the machine). Of the 382
# bundled training pairs, 221 fit in 768 tokens with SmolLM2's tokenizer (mean 485 tokens);
# the full plan takes all of them. In a separate run on the same pairs (cut at 320 tokens) the
# judge gained most of its held-out improvement in the first epoch.
FULL = DemoPlan(train_pairs=221, pretrain_pairs=64, eval_pairs=80, ood_pairs=32, finetune_epochs=1,
                pretrain_epochs=1, bt_epochs=1)
QUICK = DemoPlan(train_pairs=64, pretrain_pairs=16, eval_pairs=16, ood_pairs=8, finetune_epochs=1,
                 pretrain_epochs=1, bt_epochs=1, max_length=512, bt_max_length=512)


def bundled(name: str) -> str:
    return str(resources.files("rewardkit") / "resources" / name)


def demo_slices(plan: DemoPlan, model: str) -> dict[str, list]:
    """The bundled pairs, sliced in memory, each slice taking only pairs whose judge row fits in
    plan.max_length with `model`'s tokenizer (whole rows; pairs that fit are chosen, none is
    cut): training (also stage 1's unlabeled pool, labels dropped), the held-out slice and the
    out-of-domain slice."""
    from rewardkit.data import load_pairs
    from rewardkit.recipes.partial_finetune import fitting_pairs, judge_row_encoder

    encoder = judge_row_encoder(model)
    train = fitting_pairs(load_pairs(bundled("demo_train.jsonl")).records, encoder, plan.max_length, plan.train_pairs)
    held = load_pairs(bundled("demo_eval.jsonl")).records
    return {"train": train, "pretrain": train[: plan.pretrain_pairs],
            "heldout": fitting_pairs([p for p in held if p.subset == "eval"], encoder, plan.max_length, plan.eval_pairs),
            "ood": fitting_pairs([p for p in held if p.subset == "Natural"], encoder, plan.max_length, plan.ood_pairs)}


LIMIT_S = {"quick": 240.0, "full": 900.0}  # the README's promises, on 2 cores
HEADROOM = 0.9  # aim under the limit: the estimate is only as good as its calibration
# Calibration, measured: the whole-rows full demo (`rewardkit demo`, wall time, model already
# pulled) fitted to 189 training pairs ran CALIBRATION_TOKENS tokens of work (plan_tokens below)
# in CALIBRATION_S seconds on a 2-core Xeon without native bf16 (fp32) where
# probe_tokens_per_s() measured CALIBRATION_TPS. Estimates scale with the tokens of work and
# inversely with the probe. (Its estimate from the previous calibration was 807 s.)
CALIBRATION_S = 784.0
CALIBRATION_TPS = 965.0
CALIBRATION_TOKENS = 905_792
# On a CPU with native bf16 the demo trains and scores under bf16 autocast, whose backward
# passes and cached-prefix scoring run slower relative to the probe's forward pass than fp32
# does. Measured on the bf16 machine (AMD EPYC, 2 cores, avx512_bf16, 2026-12-03): without this
# factor a plan estimated at 808 s ran 1,049 s; with 1049/808 = 1.30 one estimated at 808 s ran
# 857 s. The factor is the product of both runs' ratios.
KIND_FACTOR = {"fp32": 1.0, "bf16": round(1049.0 / 808.0 * 857.0 / 808.0, 3)}
PROBE_ROWS, PROBE_TOKENS = 4, 256


@dataclass(frozen=True)
class RowLengths:
    """Tokens of each pair's judge row, in slice order (what the plan would take first)."""
    train: list
    heldout: list
    ood: list


def row_lengths(plan: DemoPlan, model: str) -> RowLengths:
    from rewardkit.recipes.partial_finetune import judge_row_encoder

    encoder = judge_row_encoder(model)
    data = demo_slices(plan, model)
    size = {name: [len(encoder.encode(p.prompt, p.chosen, p.rejected).input_ids) for p in data[name]]
            for name in ("train", "heldout", "ood")}
    return RowLengths(**size)


def plan_tokens(plan: DemoPlan, lengths: RowLengths) -> float:
    """Tokens through the backbone: three models score both orders of every evaluation pair;
    stage 1 caches and trains one row per pair; the judge two rows per pair (caching + epochs);
    BT two rows per pair of about half a judge row each."""
    train, pre = sum(lengths.train[:plan.train_pairs]), sum(lengths.train[:plan.pretrain_pairs])
    scored = sum(lengths.heldout[:plan.eval_pairs]) + sum(lengths.ood[:plan.ood_pairs])
    return (3 * 2 * scored + pre * (1 + plan.pretrain_epochs) + 2 * train * (1 + plan.finetune_epochs)
            + train * (1 + plan.bt_epochs))


def probe_tokens_per_s(model: str) -> float:
    """Tokens per second of the backbone's forward pass in the precision the demo trains (and
    then scores its trained models) in: fp32 weights, under bf16 autocast where the CPU computes
    bf16 natively (models/precision.py). On the fp32 machine that is plain fp32, as when the
    calibration below was measured; on a bf16 machine it is the slower autocast path the demo
    spends its time in (the probe used to time bf16 weights there, and the plan ran over)."""
    import torch

    from rewardkit.models.heads import decoder_of
    from rewardkit.models.loading import choose_device, load_backbone
    from rewardkit.models.precision import autocast_of, set_autocast, training_precision

    backbone, _ = load_backbone(model, dtype="fp32")
    set_autocast(backbone, training_precision("fp32", "auto", choose_device(None)))
    decoder = decoder_of(backbone)
    ids = torch.randint(10, 1000, (PROBE_ROWS, PROBE_TOKENS), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode(), autocast_of(backbone):
        decoder(input_ids=ids[:, :64])  # warm-up
        best = float("inf")
        for _ in range(3):  # the best of three: one pass can land on a moment of contention
            start = time.perf_counter()
            decoder(input_ids=ids)
            best = min(best, time.perf_counter() - start)
    return PROBE_ROWS * PROBE_TOKENS / best


def machine_kind() -> str:
    """"bf16" where the CPU (or GPU) computes bf16 natively, else "fp32" (the brief's two kinds)."""
    from rewardkit.models.loading import choose_device
    from rewardkit.models.precision import bf16_supported

    return "bf16" if bf16_supported(choose_device(None)) else "fp32"


def estimate_seconds(plan: DemoPlan, tokens_per_s: float, lengths: RowLengths, kind: str | None = None) -> float:
    factor = KIND_FACTOR[kind or machine_kind()]
    return factor * CALIBRATION_S * (plan_tokens(plan, lengths) / CALIBRATION_TOKENS) * (CALIBRATION_TPS / tokens_per_s)


def fit_plan(plan: DemoPlan, tokens_per_s: float, limit_s: float, lengths: RowLengths,
             kind: str | None = None) -> DemoPlan:
    """`plan`, or the same plan on fewer training pairs (the most that fit) if its estimate is
    over `limit_s`; the evaluation slices stay whole."""
    target = limit_s * HEADROOM
    pairs = min(plan.train_pairs, len(lengths.train))
    while pairs > 16:
        fitted = replace(plan, train_pairs=pairs, pretrain_pairs=max(8, plan.pretrain_pairs * pairs // plan.train_pairs))
        if estimate_seconds(fitted, tokens_per_s, lengths, kind) <= target:
            return plan if pairs == plan.train_pairs else fitted
        pairs -= 1
    return replace(plan, train_pairs=16, pretrain_pairs=8)


def choose_plan(quick: bool, model: str, *, fit: bool = True) -> tuple[DemoPlan, dict]:
    """(plan, sizing record): the nominal plan, fitted to the limit when `fit`."""
    nominal = QUICK if quick else FULL
    limit = LIMIT_S["quick" if quick else "full"]
    if not fit:
        return nominal, {"fitted": False, "limit_s": limit}
    tps, lengths = probe_tokens_per_s(model), row_lengths(nominal, model)
    plan = fit_plan(nominal, tps, limit, lengths)
    return plan, {"fitted": True, "limit_s": limit, "probe_tokens_per_s": round(tps, 1),
                  "plan_tokens": round(plan_tokens(plan, lengths)), "estimated_s": round(estimate_seconds(plan, tps, lengths)),
                  "nominal_estimated_s": round(estimate_seconds(nominal, tps, lengths)),
                  "nominal_train_pairs": nominal.train_pairs, "shrunk": plan != nominal, "machine_kind": machine_kind()}
