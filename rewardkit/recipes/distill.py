"""Judge → scalar distillation: a pairwise judge labels pairs, a Bradley–Terry student learns
from its soft verdicts.

Evaluation capability transfer (ECT; Wang et al. 2023, "Learning Evaluation Models from Large
Language Models for Sequence Generation", arXiv:2308.04386: a large evaluator's judgements
train a small, fast reward model). Here the teacher scores each pair
(both orders averaged) and the student, a Bradley–Terry model, is trained on the cross-entropy
of σ(r_a − r_b) against the teacher's p (`soft_targets` of the bradley_terry method), or on
the teacher's hard verdicts. The student scores one response per forward pass, where the
judge needs a reference answer and two orders of a pair: what an RL loop wants.

Reported: teacher–student agreement and both accuracies on held-out labeled pairs, and the
rewards per second of both on an RL-shaped batch (8 prompts × 8 responses; the teacher's
reward is its reference-anchored one), measured side by side.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from rewardkit.data.overlap import warn_if_overlapping
from rewardkit.domains import COUNT, check_domains
from rewardkit.errors import ConfigError
from rewardkit.files import write_text
from rewardkit.recipes.saved_verdicts import judge_key, load_or_score
from rewardkit.scoring.distributed import is_writer, sharded_scoring
from rewardkit.training.loop_config import LoopConfig, option
from rewardkit.types import PreferencePair

Event = Callable[[str, dict], None]
PAIRWISE_KINDS = ("generative_judge", "pretrained_generator")


@dataclass
class DistillConfig:
    teacher: str = option("", "the judge that labels the pairs (a trained judge directory or a causal LM)")
    hard_labels: bool = option(False, "train on the teacher's verdicts (p > 0.5) instead of its probabilities")
    throughput_prompts: int = option(8, "RL-shaped throughput batch: prompts", domain=COUNT)
    throughput_responses: int = option(8, "RL-shaped throughput batch: responses per prompt", domain=COUNT)

    def __post_init__(self):
        check_domains(self)  # rewardkit/domains.py


def check_teacher(teacher: str) -> str:
    """The teacher's resolved path; an error unless it is a pairwise judge (or a plain LM, which
    loads as a zero-shot judge). Reads only rewardkit.json, before any model loads."""
    from rewardkit.models.loading import resolve_model_path
    from rewardkit.models.manifest import read_manifest

    if not teacher:
        raise ConfigError("--teacher: give the judge that labels the pairs")
    resolved = resolve_model_path(teacher)
    manifest = read_manifest(resolved) if Path(resolved).is_dir() else None
    if manifest is not None and manifest.kind not in PAIRWISE_KINDS:
        raise ConfigError(f"--teacher {teacher}: a {manifest.kind!r} model, not a pairwise judge; distillation "
                          "learns a scalar model from a judge's verdicts (kinds: " + ", ".join(PAIRWISE_KINDS) + ")")
    return resolved


def self_training_verdicts(teacher: str) -> list[Path]:
    """Where self-training saved this teacher's verdicts on its pool, when the teacher is round N
    of a self-training run (verdicts-(N+1).json beside it): distilling from that round over the
    same pool then labels nothing (the fingerprint decides)."""
    record = Path(teacher) / "self_training.json"
    try:
        index = int(json.loads(record.read_text(encoding="utf-8"))["round"]) if record.is_file() else None
    except (OSError, ValueError, KeyError, TypeError):
        index = None
    return [] if index is None else [Path(teacher).parent / f"verdicts-{index + 1}.json"]


def teacher_verdicts(teacher, pairs) -> list[float]:
    """The teacher's P(a better) per (prompt, a, b), both orders averaged."""
    return teacher.compare([p.prompt for p in pairs], [p.response_a for p in pairs], [p.response_b for p in pairs])


def teacher_labeled(teacher, pairs, *, hard: bool, probabilities: list[float] | None = None) -> list[PreferencePair]:
    """Each (prompt, a, b) as a pair whose `target` is the teacher's P(a better)."""
    if probabilities is None:
        probabilities = teacher_verdicts(teacher, pairs)
    return [PreferencePair(p.prompt, p.response_a, p.response_b, p.id, "teacher", p.subset,
                           extra={"target": float(q > 0.5) if hard else float(q)})
            for p, q in zip(pairs, probabilities)]


def distill(loop: LoopConfig, bt_options, options: DistillConfig, *, on_event: Event | None = None) -> dict:
    """Labels loop.data with the teacher, trains the student into loop.output, reports."""
    from rewardkit.data import load_pairs, load_response_pairs
    from rewardkit.methods.load import load_reward_model
    from rewardkit.methods.train import train_method

    emit = on_event or (lambda kind, data: None)
    teacher_path = check_teacher(options.teacher)
    pairs = load_response_pairs(loop.data, seed=loop.seed).records  # labels, if any, are not used
    if loop.max_pairs is not None:
        pairs = pairs[:loop.max_pairs]
    held = load_pairs(loop.eval_data).records if loop.eval_data else []
    warn_if_overlapping(loop.data, loop.eval_data, "the pool the teacher labels")
    emit("stage", {"name": "label", "text": f"the teacher labels {len(pairs)} pairs"})
    teacher = load_reward_model(teacher_path, max_length=loop.max_length)
    started = time.time()
    # saved before the student trains: a crash in training does not make the teacher label again
    output = Path(loop.output)
    output.mkdir(parents=True, exist_ok=True)
    probabilities, reused = load_or_score(output / "teacher_verdicts.json", judge_key(pairs, teacher_path, loop.max_length),
                                          len(pairs), lambda: teacher_verdicts(teacher, pairs),
                                          elsewhere=self_training_verdicts(teacher_path))
    if reused:
        emit("resume", {"verdicts": str(output / "teacher_verdicts.json")})
    labeled = teacher_labeled(teacher, pairs, hard=options.hard_labels, probabilities=probabilities)
    labeling_s = time.time() - started
    emit("stage", {"name": "train", "text": "training the Bradley–Terry student"})
    summary = train_method("bradley_terry", replace(loop, data=labeled, max_pairs=None),
                           replace(bt_options, soft_targets=True), on_event=emit)
    student = load_reward_model(loop.output)
    report = {"teacher": options.teacher, "pairs": len(pairs), "hard_labels": options.hard_labels,
              "labeling_s": round(labeling_s, 1), "labels_reused": reused, "final_loss": summary.get("final_loss")}
    if held:
        with sharded_scoring():  # under torchrun the processes share it; one process's numbers
            report["held_out"] = agreement(teacher, student, held)
    report["throughput"] = throughput(teacher, student, held or labeled, options)  # each process its own
    if is_writer():
        write_text(output / "distill.json", json.dumps(report, indent=2))
        write_text(output / "distill_report.md", report_text(report))
    return report


def agreement(teacher, student, pairs: list[PreferencePair]) -> dict:
    args = ([p.prompt for p in pairs], [p.chosen for p in pairs], [p.rejected for p in pairs])
    t, s = teacher.compare(*args), student.compare(*args)
    n = len(pairs)
    return {"pairs": n, "teacher_accuracy": sum(x > 0.5 for x in t) / n, "student_accuracy": sum(x > 0.5 for x in s) / n,
            "agreement": sum((x > 0.5) == (y > 0.5) for x, y in zip(t, s)) / n}


def throughput(teacher, student, pairs: list, options: DistillConfig) -> dict:
    """Rewards per second on an RL-shaped batch (prompts × responses): the student's scalar vs
    the teacher's reward against a reference answer, on the same texts, one after the other."""
    prompts, responses, references = [], [], []
    for pair in pairs[:options.throughput_prompts]:
        answers = [getattr(pair, "chosen", None) or pair.response_a, getattr(pair, "rejected", None) or pair.response_b]
        for k in range(options.throughput_responses):
            prompts.append(pair.prompt)
            responses.append(answers[k % 2][: max(1, len(answers[k % 2]) - 7 * (k // 2))])  # distinct responses
            references.append(answers[0])
    timings = {}
    for name, fn in (("student", lambda: student.reward(prompts, responses)),
                     ("teacher", lambda: teacher.reward(prompts, responses, references))):
        start = time.perf_counter()
        fn()
        timings[name] = len(responses) / (time.perf_counter() - start)
    return {"batch": f"{len(set(map(str, prompts)))} prompts × {options.throughput_responses} responses",
            "student_rewards_per_s": round(timings["student"], 2), "teacher_rewards_per_s": round(timings["teacher"], 2),
            "speedup": timings["student"] / timings["teacher"]}


def report_text(report: dict) -> str:
    lines = ["# Judge → Bradley–Terry distillation", "",
             f"Teacher `{report['teacher']}` labeled {report['pairs']} pairs "
             f"({'hard verdicts' if report['hard_labels'] else 'soft probabilities'}) in {report['labeling_s']} s"
             + (" (its saved verdicts, reused)." if report.get("labels_reused") else ".")]
    if "held_out" in report:
        h = report["held_out"]
        lines += ["", f"Held-out ({h['pairs']} labeled pairs): teacher accuracy {h['teacher_accuracy']:.3f}, student "
                      f"{h['student_accuracy']:.3f}, teacher–student agreement {h['agreement']:.3f}."]
    t = report["throughput"]
    lines += ["", f"Rewards per second ({t['batch']}): student {t['student_rewards_per_s']}, teacher "
                  f"(reference-anchored) {t['teacher_rewards_per_s']}: {t['speedup']:.2f}×.", ""]
    return "\n".join(lines)
