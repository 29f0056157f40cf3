"""Every method scores the same rows the same way at training time (its own evaluation) and
after `load_reward_model`, in whichever precision the machine picks.

Each test runs twice: `mixed_precision="no"` (what an AVX2-only CPU picks; on a CPU with native
bf16 the reload used to pick bf16 and score differently) and `"bf16"` (what a CPU with native
bf16 picks; on an AVX2-only CPU this forces bf16 autocast, emulated: slow, but the models are
tiny). Between them both CPU kinds' paths run on either machine. Tolerances are what fp32
summation order allows, not what a dtype mismatch would.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rewardkit import LoopConfig, load_reward_model, train_method
from rewardkit.methods.bradley_terry import BradleyTerryConfig
from rewardkit.methods.judge import JudgeConfig
from rewardkit.models.manifest import read_manifest
from rewardkit.models.precision import Precision, bf16_supported, scoring_precision

PRECISIONS = ["no", "bf16"]
GOOD = ["good answer", "correct and helpful", "yes sure good", "good good"]
BAD = ["bad wrong", "sorry cannot", "harmful bad", "wrong no"]
# absolute, on means over the 12 held-out pairs. Measured on a CPU with native bf16: scoring in
# the recorded precision lands within 3e-6 of training's figure (bf16 results move slightly with
# batch composition; fp32 within 1e-7), scoring in the other precision 2.5e-5 to 3e-4 away. On an
# AVX2-only CPU (bf16 emulated) --cache-frozen had landed 4.9e-5 away while it computed the
# evaluation rows in other batches than evaluation's; 2e-7 since it uses evaluation's batches.
TOLERANCE = 1e-5


def pair_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": f"question {i}?", "chosen": rng.choice(GOOD) + " " * (i % 3) + "yes" * (i % 2),
             "rejected": rng.choice(BAD) + " no" * (i % 4)} for i in range(n)]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def loop_for(tmp_path, model_dir, mixed: str, **changes) -> LoopConfig:
    base = dict(model=str(model_dir), data=[str(write(tmp_path / "train.jsonl", pair_rows(16, 0)))],
                eval_data=[str(write(tmp_path / "held.jsonl", pair_rows(12, 1)))], output=str(tmp_path / "model"),
                max_steps=8, lr=1e-2, batch_size=4, max_length=512, warmup_ratio=0.0, save_every=10**6,
                mixed_precision=mixed, freeze_embeddings=False, seed=0)
    base.update(changes)
    return LoopConfig(**base)


def judge_loop(tmp_path, model_dir, mixed: str, **changes) -> LoopConfig:
    """A short template, so that a few steps move a random tiny judge's verdicts well away from
    0.5 (around 0.5 every precision gives nearly the same probability, and the check is blind)."""
    short = tmp_path / "short.yaml"
    short.write_text('user: "Q: {prompt}\\nA: {response_a}\\nB: {response_b}\\nWhich is better?"\n')
    return loop_for(tmp_path, model_dir, mixed, template=str(short), **changes)


def held_out(tmp_path) -> tuple[list, list, list]:
    rows = [json.loads(line) for line in (tmp_path / "held.jsonl").read_text().splitlines()]
    return [r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows]


def mean_margin(scorer, tmp_path) -> float:
    """Mean r(chosen) − r(rejected) of a scalar model over the held-out pairs."""
    prompts, chosen, rejected = held_out(tmp_path)
    margins = [c - r for c, r in zip(scorer.score(prompts, chosen), scorer.score(prompts, rejected))]
    return sum(margins) / len(margins)


def expected_precision(mixed: str) -> dict:
    return Precision("fp32", "bf16" if mixed == "bf16" else None).to_dict()


def reloaded(directory, mixed: str):
    """The model as a user reloads it (dtype auto), with the precision its manifest records."""
    assert read_manifest(directory).precision == expected_precision(mixed)
    scorer = load_reward_model(str(directory))
    assert scorer.precision == Precision.from_dict(expected_precision(mixed))
    return scorer


@pytest.mark.parametrize("mixed", PRECISIONS)
def test_judge_scores_after_reload_what_its_training_measured(tmp_path, tiny_model_dir, mixed):
    summary = train_method("judge", judge_loop(tmp_path, tiny_model_dir, mixed, max_steps=20), JudgeConfig())
    p = reloaded(tmp_path / "model", mixed).compare(*held_out(tmp_path))
    assert sum(p) / len(p) == pytest.approx(summary["eval_mean_p_chosen"], abs=TOLERANCE)
    assert sum(x > 0.5 for x in p) / len(p) == summary["eval_accuracy"]


@pytest.mark.parametrize("mixed", PRECISIONS)
def test_bradley_terry_scores_after_reload_what_its_training_measured(tmp_path, tiny_model_dir, mixed):
    summary = train_method("bradley_terry", loop_for(tmp_path, tiny_model_dir, mixed), BradleyTerryConfig())
    assert mean_margin(reloaded(tmp_path / "model", mixed), tmp_path) == pytest.approx(summary["eval_mean_margin"],
                                                                                      abs=TOLERANCE)


@pytest.mark.parametrize("mixed", PRECISIONS)
def test_frozen_cache_training_scores_after_reload_what_it_measured(tmp_path, tiny_model_dir, mixed):
    """--cache-frozen keeps the bottom blocks' output as they produce it (fp32 under bf16
    autocast): rounding it would make the training-time scores differ from the reloaded ones."""
    loop = loop_for(tmp_path, tiny_model_dir, mixed, train_layers=1, cache_frozen=True, freeze_embeddings=True)
    summary = train_method("bradley_terry", loop, BradleyTerryConfig())
    assert mean_margin(reloaded(tmp_path / "model", mixed), tmp_path) == pytest.approx(summary["eval_mean_margin"],
                                                                                      abs=TOLERANCE)


@pytest.mark.parametrize("mixed", PRECISIONS)
def test_lora_adapters_score_after_reload_what_their_training_measured(tmp_path, tiny_model_dir, mixed):
    """An adapter saved unmerged is kept unmerged when the model scores under autocast: merged,
    W + BA rounds differently in bf16 from training's W·x + B(A·x) (3e-4 off on this judge)."""
    lora = dict(lora=True, lora_rank=4, freeze_embeddings=True)
    summary = train_method("judge", judge_loop(tmp_path, tiny_model_dir, mixed, max_steps=20, **lora), JudgeConfig())
    p = reloaded(tmp_path / "model", mixed).compare(*held_out(tmp_path))
    assert sum(p) / len(p) == pytest.approx(summary["eval_mean_p_chosen"], abs=TOLERANCE)
    summary = train_method("bradley_terry", loop_for(tmp_path, tiny_model_dir, mixed, output=str(tmp_path / "bt"), **lora),
                           BradleyTerryConfig())
    assert mean_margin(reloaded(tmp_path / "bt", mixed), tmp_path) == pytest.approx(summary["eval_mean_margin"],
                                                                                   abs=TOLERANCE)


@pytest.mark.parametrize("mixed", PRECISIONS)
def test_multi_objective_scores_after_reload_what_its_training_measured(tmp_path, tiny_model_dir, mixed):
    from rewardkit.methods import get_method

    rng = random.Random(0)
    ratings = [{"prompt": f"q{i}", "response": " ".join(rng.choice(GOOD + BAD) for _ in range(3)), "scale": [0, 4],
                "attributes": {"helpfulness": i % 5, "verbosity": (i * 3) % 5}} for i in range(24)]
    method = get_method("multi_objective")
    loop = loop_for(tmp_path, tiny_model_dir, mixed, data=[], eval_data=[])
    options = method.Config(ratings=[str(write(tmp_path / "r.jsonl", ratings))],
                            pairs=[str(write(tmp_path / "held.jsonl", pair_rows(12, 1)))], gate_steps=20)
    summary = train_method(method, loop, options)
    scorer = reloaded(tmp_path / "model", mixed)
    assert mean_margin(scorer, tmp_path) == pytest.approx(summary["mean_margin"], abs=TOLERANCE)
    prompts, chosen, rejected = held_out(tmp_path)
    right = [c > r for c, r in zip(scorer.score(prompts, chosen), scorer.score(prompts, rejected))]
    assert sum(right) / len(right) == pytest.approx(summary["accuracy"])


@pytest.mark.parametrize("mixed", PRECISIONS)
def test_preference_repr_scores_after_reload_what_its_training_measured(tmp_path, tiny_model_dir, mixed):
    loop = loop_for(tmp_path, tiny_model_dir, mixed, max_steps=30)
    summary = train_method("preference_repr", loop)
    p = reloaded(tmp_path / "model", mixed).compare(*held_out(tmp_path))
    assert sum(p) / len(p) == pytest.approx(summary["eval_mean_p_chosen"], abs=TOLERANCE)


@pytest.mark.parametrize("mixed", PRECISIONS)
def test_self_trained_and_distilled_models_score_after_reload_what_training_measured(tmp_path, tiny_model_dir, mixed):
    from rewardkit.recipes.distill import DistillConfig, distill
    from rewardkit.recipes.self_training import SelfTrainConfig, self_train

    loop = judge_loop(tmp_path, tiny_model_dir, mixed, output=str(tmp_path / "self"), max_steps=4)
    pool = write(tmp_path / "pool.jsonl", [{"prompt": r["prompt"], "response_a": r["chosen"], "response_b": r["rejected"]}
                                           for r in pair_rows(8, 2)])
    options = SelfTrainConfig(labeled=list(loop.data), unlabeled=[str(pool)], rounds=1, keep_share=0.5)
    result = self_train(loop, JudgeConfig(), options)
    last = result["rounds"][-1]
    p = reloaded(tmp_path / "self" / f"round-{last['round']}", mixed).compare(*held_out(tmp_path))
    assert sum(p) / len(p) == pytest.approx(last["eval_mean_p_chosen"], abs=TOLERANCE)

    student = replace(loop, data=[str(pool)], output=str(tmp_path / "student"))
    distill(student, BradleyTerryConfig(), DistillConfig(teacher=str(tmp_path / "self" / "round-0")))
    summary = json.loads((tmp_path / "student" / "summary.json").read_text())
    assert mean_margin(reloaded(tmp_path / "student", mixed), tmp_path) == pytest.approx(summary["eval_mean_margin"],
                                                                                        abs=TOLERANCE)


def test_the_precision_of_a_model_is_what_its_manifest_records_unless_a_dtype_is_asked_for():
    cpu = torch.device("cpu")
    saved = {"weights": "fp32", "autocast": "bf16"}
    if bf16_supported(cpu):
        assert scoring_precision("auto", saved, cpu) == Precision("fp32", "bf16")
    else:  # followed on a CPU without native bf16 too, with a warning that it is slow
        with pytest.warns(UserWarning, match="no native bf16"):
            assert scoring_precision("auto", saved, cpu) == Precision("fp32", "bf16")
    assert scoring_precision("fp32", saved, cpu) == Precision("fp32")  # an explicit dtype wins
    assert scoring_precision(None, None, cpu) == Precision("bf16" if bf16_supported(cpu) else "fp32")  # untrained
    assert scoring_precision("auto", {"weights": "fp32", "autocast": None}, cpu) == Precision("fp32")


def test_a_model_scored_in_another_precision_than_it_was_trained_in_scores_differently(tmp_path, tiny_model_dir):
    """The checks above are not blind: the same trained models, scored without the bf16
    autocast their training used, land further from training's figures than TOLERANCE.

    For the judge the mean P(chosen) can hide it: on a CPU without native bf16 (Xeon, AVX-512
    but no avx512_bf16, 2026-12-04) the per-pair differences between the two precisions were
    3e-6 to 6.5e-5 with both signs and their mean 2e-6. So the judge is checked pair by pair
    against the reload in its recorded precision (whose mean the tests above hold to
    training's), and Bradley-Terry, whose margins did not cancel so, against training's mean."""
    summary = train_method("judge", judge_loop(tmp_path, tiny_model_dir, "bf16", max_steps=20), JudgeConfig())
    recorded = reloaded(tmp_path / "model", "bf16").compare(*held_out(tmp_path))
    assert sum(recorded) / len(recorded) == pytest.approx(summary["eval_mean_p_chosen"], abs=TOLERANCE)
    other = load_reward_model(str(tmp_path / "model"), dtype="fp32").compare(*held_out(tmp_path))
    assert max(abs(a - b) for a, b in zip(recorded, other)) > 2 * TOLERANCE
    summary = train_method("bradley_terry", loop_for(tmp_path, tiny_model_dir, "bf16", output=str(tmp_path / "bt")),
                           BradleyTerryConfig())
    scorer = load_reward_model(str(tmp_path / "bt"), dtype="fp32")
    assert abs(mean_margin(scorer, tmp_path) - summary["eval_mean_margin"]) > TOLERANCE
