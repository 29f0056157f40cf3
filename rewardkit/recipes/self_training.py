"""Semi-supervised self-training of the pairwise judge on unlabeled pairs.

SSRM (He et al., "Semi-Supervised Reward Modeling via Iterative Self-Training", Findings of
EMNLP 2024, arXiv:2409.06903; also the self-training loop of GRAM-R², 2025): round 0 trains the judge on the labeled pairs; each
further round scores every unlabeled pair with the current judge (both orders averaged),
keeps the pairs whose confidence max(p, 1 − p) reaches the threshold as pseudo-labeled pairs,
and trains again on labeled + kept. Optionally GRAM's generative pre-training on the unlabeled
pairs comes first (`pretrain`), and the judge starts from it.

What can go wrong is reported per round, not hidden: the share of pseudo-labels that pick the
first-shown answer (the pool's order is a seeded shuffle, so a fair judge is near 0.5) and the
longer answer (a length-biased judge would teach itself its bias), the confidence histogram,
and the number kept. If the unlabeled file has labels they are hidden from training and used
only for the pseudo-label accuracy in the report.

Each round is a loadable judge directory (`round-N/`) with `self_training.json`; a finished
round is skipped on a rerun, so the recipe resumes by round.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from rewardkit.data.overlap import warn_if_overlapping
from rewardkit.domains import COUNT, COUNT_OR_ZERO, Domain, check_domains
from rewardkit.errors import ConfigError
from rewardkit.files import write_text
from rewardkit.recipes.saved_verdicts import judge_key, load_or_score, write_atomic
from rewardkit.scoring.distributed import is_writer
from rewardkit.training.loop_config import LoopConfig, option
from rewardkit.types import PreferencePair, ResponsePair

Event = Callable[[str, dict], None]
HISTOGRAM_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


@dataclass
class SelfTrainConfig:
    labeled: list = option(help="labeled pair file(s) (chosen/rejected); repeat the flag for more", factory=list)
    unlabeled: list = option(help="unlabeled pair file(s) (response_a/response_b; a labeled file's labels are "
                                  "hidden from training and used only to report pseudo-label accuracy)", factory=list)
    rounds: int = option(3, "self-training rounds after round 0 (the labeled-only judge)", domain=COUNT_OR_ZERO)
    threshold: float = option(0.8, "keep a pseudo-label when the judge's confidence max(p, 1 − p) reaches this",
                              domain=Domain("a number in (0.5, 1]: a confidence max(p, 1 − p) is at least 0.5, "
                                            "so 0.5 or less would keep every pair", low=0.5, high=1, low_open=True))
    restart: bool = option(True, "each round trains from the base model (--restart, the default: measured to keep "
                                 "out-of-domain accuracy where --continue lost 1–5 points, README) or continues from "
                                 "the previous round's judge (--continue)", flag="--restart/--continue")
    pretrain: bool = option(False, "GRAM stage 1 on the unlabeled pairs first; every round's judge starts from it")
    max_unlabeled: int | None = option(None, "use only N unlabeled pairs (seeded sample)", domain=COUNT)
    keep_share: float | None = option(None, "instead of --threshold: keep this share of the pool, most confident first "
                                            "(for a judge whose verdicts rarely reach a fixed threshold)",
                                     domain=Domain("a number in (0, 1]", low=0, high=1, low_open=True))

    def __post_init__(self):
        check_domains(self)  # rewardkit/domains.py
        if not 0.5 < self.threshold <= 1.0:
            raise ConfigError(f"--threshold must be in (0.5, 1], got {self.threshold}: confidence max(p, 1 − p) "
                              "is at least 0.5, so 0.5 or less would keep every pair")
        if self.keep_share is not None and not 0 < self.keep_share <= 1:
            raise ConfigError(f"--keep-share must be in (0, 1], got {self.keep_share}")
        if self.rounds < 0:
            raise ConfigError(f"--rounds must be ≥ 0, got {self.rounds}")


@dataclass
class Pool:
    pairs: list[ResponsePair]
    hidden: list  # True/False: response_a is the labeled better answer; None: no label. Reports only.


def read_inputs(options: SelfTrainConfig, seed: int) -> tuple[list[PreferencePair], Pool]:
    """The labeled pairs and the unlabeled pool, both checked before any model loads."""
    import random

    from rewardkit.data import load_pairs
    from rewardkit.data.load import load_hidden_labels

    if not options.labeled:
        raise ConfigError("--labeled: give at least one labeled pair file")
    if not options.unlabeled:
        raise ConfigError("--unlabeled: give at least one unlabeled pair file")
    labeled = load_pairs(options.labeled).records
    pairs, hidden = load_hidden_labels(options.unlabeled, seed=seed)
    if not labeled or not pairs:
        raise ConfigError(f"{'--labeled' if not labeled else '--unlabeled'}: no usable pairs")
    if options.max_unlabeled is not None and options.max_unlabeled < len(pairs):
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        keep = sorted(order[:options.max_unlabeled])
        pairs, hidden = [pairs[i] for i in keep], [hidden[i] for i in keep]
    return labeled, Pool(pairs, hidden)


def pseudo_label(probabilities: list[float], pool: Pool, threshold: float, round_index: int) -> tuple[list, dict]:
    """(pseudo-labeled pairs, report). Only the model's verdicts decide the labels; `pool.hidden`
    is read for the report's accuracy line and nothing else."""
    kept, report_rows = [], []
    for p, pair, truth in zip(probabilities, pool.pairs, pool.hidden):
        if max(p, 1 - p) < threshold:
            continue
        a_wins = p >= 0.5
        chosen, rejected = (pair.response_a, pair.response_b) if a_wins else (pair.response_b, pair.response_a)
        kept.append(PreferencePair(pair.prompt, chosen, rejected, pair.id, "pseudo-label", f"round-{round_index}",
                                   extra={"confidence": max(p, 1 - p)}))
        report_rows.append((a_wins, len(chosen) > len(rejected), len(chosen) != len(rejected), truth))
    return kept, pseudo_report(probabilities, report_rows, threshold)


def share_threshold(probabilities: list[float], share: float) -> float:
    """The confidence of the last pair inside the most confident `share` of the pool (ties at
    that confidence are kept too)."""
    confidences = sorted((max(p, 1 - p) for p in probabilities), reverse=True)
    return confidences[max(0, min(len(confidences), round(share * len(confidences))) - 1)]


def pseudo_report(probabilities: list[float], rows: list[tuple], threshold: float) -> dict:
    confidences = [max(p, 1 - p) for p in probabilities]
    histogram = [sum(lo <= c < hi or (hi == 1.0 and c == 1.0) for c in confidences)
                 for lo, hi in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:])]
    differ = [r for r in rows if r[2]]
    labeled = [r for r in rows if r[3] is not None]
    return {"pool": len(probabilities), "kept": len(rows), "threshold": threshold,
            "confidence_histogram": {"edges": list(HISTOGRAM_EDGES), "counts": histogram},
            "picks_first_shown": sum(r[0] for r in rows) / len(rows) if rows else None,
            "picks_longer": sum(r[1] for r in differ) / len(differ) if differ else None,
            "pseudo_label_accuracy": (sum(r[0] == r[3] for r in labeled) / len(labeled)) if labeled else None,
            "pseudo_labels_with_hidden_truth": len(labeled)}


def self_train(loop: LoopConfig, judge_options, options: SelfTrainConfig, *, on_event: Event | None = None) -> dict:
    """Runs (or resumes) the rounds into loop.output/round-N; returns the per-round records."""
    from rewardkit.methods.load import load_reward_model
    from rewardkit.methods.train import train_method

    emit = on_event or (lambda kind, data: None)
    labeled, pool = read_inputs(options, loop.seed)
    warn_if_overlapping(list(options.unlabeled) + list(options.labeled), loop.eval_data, "the self-training pool")
    output = Path(loop.output)
    output.mkdir(parents=True, exist_ok=True)
    base = loop.model
    if options.pretrain:
        stage1 = output / "pretrain"
        if not (stage1 / "rewardkit.json").is_file():
            emit("stage", {"name": "pretrain", "text": f"GRAM stage 1 on {len(pool.pairs)} unlabeled pairs"})
            train_method("pretrain", replace(loop, data=pool.pairs, output=str(stage1), eval_data=[], resume=False),
                         on_event=emit)
        base = str(stage1)
    history: list[dict] = []
    for index in range(options.rounds + 1):
        directory = output / f"round-{index}"
        record_file = directory / "self_training.json"
        if record_file.is_file() and (directory / "rewardkit.json").is_file():
            history.append(json.loads(record_file.read_text()))
            emit("resume", {"round": index})
            continue
        started = time.time()
        record: dict = {"round": index}
        data = labeled
        if index > 0:
            probabilities = _pool_verdicts(output, index, pool, loop.max_length, emit, load_reward_model)
            threshold = options.threshold if options.keep_share is None else share_threshold(probabilities,
                                                                                              options.keep_share)
            kept, record["pseudo"] = pseudo_label(probabilities, pool, threshold, index)
            if not kept:
                top = max(max(p, 1 - p) for p in probabilities)
                raise ConfigError(f"--threshold {options.threshold}: no unlabeled pair reached it in round {index} "
                                  f"(the most confident verdict was {top:.3f}); lower --threshold")
            data = labeled + kept
        start_from = base if index == 0 or options.restart else str(output / f"round-{index - 1}")
        emit("stage", {"name": f"train-{index}", "text": f"round {index}: training on {len(data)} pairs"})
        summary = train_method("judge", replace(loop, model=start_from, data=data, output=str(directory), resume=False),
                               judge_options, on_event=emit)
        record.update({"trained_on": len(data), "labeled": len(labeled), "started_from": start_from,
                       "seconds": round(time.time() - started, 1),
                       **{k: v for k, v in summary.items() if k.startswith(("eval_", "final_loss"))}})
        if is_writer():
            write_atomic(record_file, json.dumps(record, indent=2))
        history.append(record)
    if is_writer():
        write_report(output, history, options)
    return {"rounds": history}


def _pool_verdicts(output: Path, index: int, pool: Pool, max_length: int, emit: Event, load_reward_model) -> list[float]:
    """Round `index`'s verdicts on the pool from the previous round's judge. They are saved
    (verdicts-N.json) before the round trains, so a crash during training does not score the
    pool again; a file written for another pool or another previous-round judge is ignored."""
    previous = output / f"round-{index - 1}"
    key = judge_key(pool.pairs, str(previous), max_length)

    def score() -> list[float]:
        emit("stage", {"name": f"label-{index}", "text": f"round {index}: pseudo-labeling {len(pool.pairs)} pairs"})
        judge = load_reward_model(str(previous), max_length=max_length)
        return judge.compare([p.prompt for p in pool.pairs], [p.response_a for p in pool.pairs],
                             [p.response_b for p in pool.pairs])

    saved = output / f"verdicts-{index}.json"
    probabilities, reused = load_or_score(saved, key, len(pool.pairs), score)
    if reused:
        emit("resume", {"round": index, "verdicts": str(saved)})
    return probabilities


def write_report(output: Path, history: list[dict], options: SelfTrainConfig) -> None:
    start = "restarts from the base model" if options.restart else "continues from the previous judge"
    rule = (f"Kept: the most confident {options.keep_share:.0%} of the pool" if options.keep_share is not None
            else f"Threshold {options.threshold}")
    lines = ["# Self-training", "",
             f"{rule}; each round {start}"
             f"{'; GRAM pre-training on the pool first' if options.pretrain else ''}.", "",
             "| round | trained on | kept | held-out accuracy | pseudo-label accuracy | picks first shown | picks longer | seconds |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in history:
        p = r.get("pseudo", {})
        lines.append(f"| {r['round']} | {r['trained_on']} | {p.get('kept', '—')} | {_fmt(r.get('eval_accuracy'))} | "
                     f"{_fmt(p.get('pseudo_label_accuracy'))} | {_fmt(p.get('picks_first_shown'))} | "
                     f"{_fmt(p.get('picks_longer'))} | {r['seconds']} |")
    for r in history:
        if "pseudo" in r:
            h = r["pseudo"]["confidence_histogram"]
            bins = ", ".join(f"[{lo}, {hi}): {n}" for lo, hi, n in zip(h["edges"], h["edges"][1:], h["counts"]))
            lines.append(f"\nRound {r['round']} confidence histogram: {bins}.")
    lines += ["", "![rounds](self_training.png)", ""]
    write_text(output / "report.md", "\n".join(lines))
    _plot(history, output / "self_training.png")


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def _plot(history: list[dict], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    for key, label in (("eval_accuracy", "held-out accuracy"),):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            left.plot(rounds, [v if v is not None else float("nan") for v in values], marker="o", label=label)
    accuracy = [r.get("pseudo", {}).get("pseudo_label_accuracy") for r in history]
    left.plot(rounds, [v if v is not None else float("nan") for v in accuracy], marker="s", label="pseudo-label accuracy")
    left.set_xlabel("round")
    left.set_ylim(0, 1)
    left.legend(fontsize=7)
    right.bar(rounds, [r.get("pseudo", {}).get("kept", 0) for r in history])
    right.set_xlabel("round")
    right.set_title("pseudo-labeled pairs kept", fontsize=9)
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
