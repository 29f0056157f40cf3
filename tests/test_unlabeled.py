"""Learning from unlabeled pairs: self-training (SSRM) and judge → Bradley–Terry distillation."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rewardkit import load_reward_model
from rewardkit.data import load_pairs
from rewardkit.data.load import load_hidden_labels
from rewardkit.errors import ConfigError, DataError
from rewardkit.losses import soft_bt_loss
from rewardkit.methods.bradley_terry import BradleyTerryConfig
from rewardkit.methods.judge import JudgeConfig
from rewardkit.recipes import self_training
from rewardkit.recipes.distill import DistillConfig, check_teacher, distill
from rewardkit.recipes.self_training import Pool, SelfTrainConfig, pseudo_label, self_train
from rewardkit.training import LoopConfig
from rewardkit.types import ResponsePair

GOOD = ["good answer", "correct and helpful", "yes sure good", "good good", "helpful yes"]
BAD = ["bad wrong", "sorry cannot", "harmful bad", "wrong no", "bad bad"]


def rows(n: int, seed: int, good=GOOD, bad=BAD) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": f"question {i}?", "chosen": rng.choice(good), "rejected": rng.choice(bad)} for i in range(n)]


def write(path, data):
    path.write_text("".join(json.dumps(r) + "\n" for r in data))
    return path


def judge_loop(tmp_path, model_dir, **changes) -> LoopConfig:
    short = tmp_path / "short.yaml"  # a short template lets a 2-layer model find the answers quickly
    short.write_text('user: "Q: {prompt}\\nA: {response_a}\\nB: {response_b}\\nWhich is better?"\n')
    base = dict(model=str(model_dir), output=str(tmp_path / "self"), template=str(short), lr=1e-2, batch_size=8,
                max_length=256, warmup_ratio=0.0, save_every=10**6, mixed_precision="no", freeze_embeddings=False,
                seed=0)
    base.update(changes)
    return LoopConfig(**base)


# ---- pseudo-labels --------------------------------------------------------------------------

def pool_of(n: int, hidden=None) -> Pool:
    pairs = [ResponsePair(f"q{i}", f"first {i}", f"second answer {i}") for i in range(n)]
    return Pool(pairs, hidden if hidden is not None else [None] * n)


def test_threshold_keeps_exactly_the_confident_pairs():
    probabilities = [0.9, 0.15, 0.6, 0.8, 0.2, 0.79]
    kept, report = pseudo_label(probabilities, pool_of(6), 0.8, 1)
    assert [k.prompt for k in kept] == ["q0", "q1", "q3", "q4"]  # confidence ≥ 0.8: 0.9, 0.85, 0.8, 0.8
    assert [k.chosen.startswith("first") for k in kept] == [True, False, True, False]
    assert report["kept"] == 4 and report["pool"] == 6
    assert report["picks_first_shown"] == 0.5
    assert report["picks_longer"] == 0.5  # "second answer i" is the longer one
    # bins [.5,.6) [.6,.7) [.7,.8) [.8,.9) [.9,.95) [.95,1]: .6 | .79 | .8 .8 .85 | .9
    assert report["confidence_histogram"]["counts"] == [0, 1, 1, 3, 1, 0]
    assert sum(report["confidence_histogram"]["counts"]) == 6


def test_keep_share_keeps_the_most_confident_share():
    from rewardkit.recipes.self_training import share_threshold

    probabilities = [0.9, 0.15, 0.6, 0.8, 0.2, 0.79, 0.52, 0.45]
    threshold = share_threshold(probabilities, 0.5)  # the 4 most confident: .9, .85, .8, .8
    kept, _ = pseudo_label(probabilities, pool_of(8), threshold, 1)
    assert [k.prompt for k in kept] == ["q0", "q1", "q3", "q4"]
    with pytest.raises(ConfigError, match="--keep-share"):
        SelfTrainConfig(keep_share=0.0)


def test_hidden_labels_only_reach_the_report():
    # the truth says the second answer wins everywhere; the model says the first: labels follow the model
    kept, report = pseudo_label([0.95] * 4, pool_of(4, hidden=[False] * 4), 0.8, 1)
    assert all(k.chosen.startswith("first") for k in kept)
    assert report["pseudo_label_accuracy"] == 0.0 and report["pseudo_labels_with_hidden_truth"] == 4


def test_hidden_labels_never_reach_training_in_the_recipe(tmp_path, monkeypatch):
    labeled = write(tmp_path / "l.jsonl", rows(4, 0))
    unlabeled = write(tmp_path / "u.jsonl", rows(6, 1))  # labeled file: its labels are hidden
    pairs, hidden = load_hidden_labels(str(unlabeled), seed=0)
    trained_on = {}

    class Judge:  # says "the second shown answer wins", whatever the truth
        def compare(self, prompts, a, b):
            return [0.05] * len(prompts)

    def fake_train(method, loop, options=None, on_event=None):
        trained_on[loop.output] = list(loop.data)
        (tmp_path / "out").mkdir(exist_ok=True)
        from pathlib import Path
        Path(loop.output).mkdir(parents=True, exist_ok=True)
        (Path(loop.output) / "rewardkit.json").write_text("{}")
        return {"final_loss": 0.5}

    monkeypatch.setattr("rewardkit.methods.train.train_method", fake_train)
    monkeypatch.setattr("rewardkit.methods.load.load_reward_model", lambda *a, **k: Judge())
    loop = LoopConfig(model="unused", output=str(tmp_path / "out"))
    result = self_train(loop, JudgeConfig(), SelfTrainConfig(labeled=[str(labeled)], unlabeled=[str(unlabeled)],
                                                            rounds=1, threshold=0.9))
    pseudo = [p for p in trained_on[str(tmp_path / "out" / "round-1")] if p.source == "pseudo-label"]
    assert [p.chosen for p in pseudo] == [p.response_b for p in pairs]  # the model's verdict, not the truth
    accuracy = sum(not h for h in hidden) / len(hidden)
    assert result["rounds"][1]["pseudo"]["pseudo_label_accuracy"] == pytest.approx(accuracy)


def test_bad_self_training_inputs(tmp_path):
    with pytest.raises(ConfigError, match=r"--threshold: must be a number in \(0.5, 1\]: a confidence"):
        SelfTrainConfig(threshold=0.5)
    with pytest.raises(ConfigError, match="--threshold"):
        SelfTrainConfig(threshold=1.2)
    unlabeled = write(tmp_path / "u.jsonl", [{"prompt": "p", "response_a": "a", "response_b": "b"}])
    with pytest.raises(DataError, match="u.jsonl:1.*unlabeled"):  # a labeled file without labels
        self_training.read_inputs(SelfTrainConfig(labeled=[str(unlabeled)], unlabeled=[str(unlabeled)]), 0)
    with pytest.raises(ConfigError, match="--unlabeled"):
        self_training.read_inputs(SelfTrainConfig(labeled=[str(write(tmp_path / "l.jsonl", rows(2, 0)))]), 0)


def test_empty_pool_after_thresholding_is_a_clear_error(tmp_path, monkeypatch):
    class Undecided:
        def compare(self, prompts, a, b):
            return [0.55] * len(prompts)

    def fake_train(method, loop, options=None, on_event=None):
        from pathlib import Path
        Path(loop.output).mkdir(parents=True, exist_ok=True)
        (Path(loop.output) / "rewardkit.json").write_text("{}")
        return {}

    monkeypatch.setattr("rewardkit.methods.train.train_method", fake_train)
    monkeypatch.setattr("rewardkit.methods.load.load_reward_model", lambda *a, **k: Undecided())
    options = SelfTrainConfig(labeled=[str(write(tmp_path / "l.jsonl", rows(2, 0)))],
                              unlabeled=[str(write(tmp_path / "u.jsonl", rows(3, 1)))], rounds=1, threshold=0.9)
    with pytest.raises(ConfigError, match=r"--threshold 0.9: no unlabeled pair reached it in round 1 .*0.550"):
        self_train(LoopConfig(model="unused", output=str(tmp_path / "out")), JudgeConfig(), options)


# ---- the recipe on a tiny model ---------------------------------------------------------------

def test_a_self_training_round_raises_accuracy_and_resumes_by_round(tmp_path, tiny_model_dir, monkeypatch):
    # the labeled pairs use one phrase of each kind; the pool and the held-out pairs all five, so
    # round 0 knows a few words and the confident pseudo-labels teach it the rest
    labeled = write(tmp_path / "l.jsonl", rows(8, 0, GOOD[:1], BAD[:1]))
    unlabeled = write(tmp_path / "u.jsonl", rows(96, 1))
    held = write(tmp_path / "held.jsonl", rows(40, 2))
    # 40 epochs: at 30 the gain hung on fp32 rounding (0.675 → 0.775 with AVX-512 kernels, 0.675 → 0.625 with
    # ATEN_CPU_CAPABILITY=avx2); at 40 both kernel sets give 0.75 → 0.90–0.925, pseudo-labels all right
    loop = judge_loop(tmp_path, tiny_model_dir, epochs=40, eval_data=[str(held)])
    options = SelfTrainConfig(labeled=[str(labeled)], unlabeled=[str(unlabeled)], rounds=1, threshold=0.6)
    result = self_train(loop, JudgeConfig(label_smoothing=0.1), options)
    first, second = result["rounds"]
    assert second["pseudo"]["kept"] > 0 and second["pseudo"]["pseudo_label_accuracy"] > 0.8
    assert second["eval_accuracy"] > first["eval_accuracy"] + 0.05, (first, second)
    out = tmp_path / "self"
    assert (out / "report.md").is_file() and (out / "self_training.png").is_file()
    assert load_reward_model(str(out / "round-1")).kind == "generative_judge"
    # distilling round 0 over the same pool reuses the verdicts round 1 saved: the teacher labels nothing
    monkeypatch.setattr("rewardkit.recipes.distill.teacher_verdicts", lambda *a: pytest.fail("labeled the pool again"))
    student = replace(loop, data=[str(unlabeled)], output=str(tmp_path / "student"), max_steps=1, eval_data=[])
    distilled = distill(student, BradleyTerryConfig(), DistillConfig(teacher=str(out / "round-0")))
    assert distilled["labels_reused"] is True and distilled["pairs"] == 96
    assert json.loads((tmp_path / "student" / "teacher_verdicts.json").read_text())["p_first"] == json.loads(
        (out / "verdicts-1.json").read_text())["p_first"]
    # a rerun finds both rounds done and trains nothing
    monkeypatch.setattr("rewardkit.methods.train.train_method", lambda *a, **k: pytest.fail("retrained a finished round"))
    again = self_train(loop, JudgeConfig(label_smoothing=0.1), options)
    assert again["rounds"] == result["rounds"]
    # a crash while round 1 trained: its verdicts on the pool were saved, so the pool is not scored again
    (out / "round-1" / "self_training.json").unlink()
    monkeypatch.setattr("rewardkit.methods.load.load_reward_model", lambda *a, **k: pytest.fail("scored the pool again"))
    retrained = []

    def record_training(method, loop, options=None, on_event=None):
        retrained.append(list(loop.data))
        Path(loop.output, "rewardkit.json").write_text("{}")
        return {}
    monkeypatch.setattr("rewardkit.methods.train.train_method", record_training)
    resumed = self_train(loop, JudgeConfig(label_smoothing=0.1), options)
    assert resumed["rounds"][1]["pseudo"] == second["pseudo"] and len(retrained) == 1
    assert [(p.chosen, p.rejected) for p in retrained[0]][8:] == [  # the same pseudo-labels as the first run
        (p.chosen, p.rejected) for p in self_training.pseudo_label(
            json.loads((out / "verdicts-1.json").read_text())["p_first"], self_training.read_inputs(options, 0)[1],
            0.6, 1)[0]]
    # verdicts of another round-0 judge are not reused: retraining round 0 makes round 1 score again
    (out / "round-1" / "self_training.json").unlink()
    (out / "round-0" / "self_training.json").write_text(json.dumps({**first, "seconds": -1.0}))
    with pytest.raises(pytest.fail.Exception, match="scored the pool again"):
        self_train(loop, JudgeConfig(label_smoothing=0.1), options)


# ---- distillation ---------------------------------------------------------------------------

def test_soft_loss_by_hand():
    ra, rb, t = torch.tensor([1.0, -0.5]), torch.tensor([0.0, 0.5]), torch.tensor([0.8, 0.3])
    by_hand = []
    for gap, target in ((1.0, 0.8), (-1.0, 0.3)):
        p = 1 / (1 + math.exp(-gap))
        by_hand.append(-(target * math.log(p) + (1 - target) * math.log(1 - p)))
    assert soft_bt_loss(ra, rb, t).item() == pytest.approx(sum(by_hand) / 2, rel=1e-6)
    # minimised where the gap is the target's log-odds
    gap = torch.tensor([math.log(0.8 / 0.2)], requires_grad=True)
    soft_bt_loss(gap, torch.zeros(1), torch.tensor([0.8])).backward()
    assert abs(gap.grad.item()) < 1e-6


class WordTeacher:
    """A stand-in judge: P(a better) from how many 'good' words each answer has."""

    kind, pointwise = "generative_judge", False

    def score_text(self, text):
        return sum(text.count(w) for w in ("good", "helpful", "correct", "yes"))

    def compare(self, prompts, a, b):
        return [1 / (1 + math.exp(-(self.score_text(x) - self.score_text(y)))) for x, y in zip(a, b)]

    def reward(self, prompts, responses, references=None, scale="raw"):
        return [math.log(p / (1 - p)) for p in self.compare(prompts, responses, references)]


def test_distillation_recovers_the_teachers_ranking(tmp_path, tiny_model_dir, monkeypatch):
    data = write(tmp_path / "pool.jsonl", [{"prompt": r["prompt"], "response_a": r["chosen"], "response_b": r["rejected"]}
                                           if i % 2 else {"prompt": r["prompt"], "response_a": r["rejected"],
                                                          "response_b": r["chosen"]} for i, r in enumerate(rows(48, 3))])
    held = write(tmp_path / "held.jsonl", rows(24, 4))
    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    (teacher_dir / "rewardkit.json").write_text(json.dumps({"kind": "generative_judge"}))
    (teacher_dir / "config.json").write_text("{}")
    real_load = load_reward_model
    monkeypatch.setattr("rewardkit.methods.load.load_reward_model",
                        lambda path, **k: WordTeacher() if str(path) == str(teacher_dir) else real_load(path, **k))
    loop = LoopConfig(model=str(tiny_model_dir), data=[str(data)], eval_data=[str(held)], output=str(tmp_path / "student"),
                      max_steps=40, lr=3e-3, batch_size=8, max_length=256, warmup_ratio=0.0, save_every=10**6,
                      mixed_precision="no", freeze_embeddings=False)
    report = distill(loop, BradleyTerryConfig(), DistillConfig(teacher=str(teacher_dir)))
    assert report["held_out"]["agreement"] >= 0.9 and report["held_out"]["student_accuracy"] >= 0.9
    t = report["throughput"]
    assert t["batch"] == "8 prompts × 8 responses" and t["student_rewards_per_s"] > 0
    assert t["speedup"] == pytest.approx(t["student_rewards_per_s"] / t["teacher_rewards_per_s"], rel=0.02)
    student = real_load(str(tmp_path / "student"))
    assert student.kind == "bradley_terry"
    ranked = student.score(["q"] * 3, ["good good helpful", "good answer", "bad bad"])
    assert ranked[0] > ranked[2] and ranked[1] > ranked[2]
    assert (tmp_path / "student" / "distill_report.md").is_file()


def test_a_teacher_that_is_not_a_judge_is_refused_before_loading(tmp_path):
    bt = tmp_path / "bt"
    bt.mkdir()
    (bt / "rewardkit.json").write_text(json.dumps({"kind": "bradley_terry"}))
    (bt / "config.json").write_text("{}")  # the directory is not even a loadable model: no load happens
    with pytest.raises(ConfigError, match="not a pairwise judge"):
        check_teacher(str(bt))
    with pytest.raises(ConfigError, match="--teacher"):
        check_teacher("")


def test_soft_targets_need_a_probability_per_pair(tmp_path, tiny_model_dir):
    from rewardkit import train_method

    loop = LoopConfig(model=str(tiny_model_dir), data=rows(4, 0), output=str(tmp_path / "bt"), max_steps=1)
    with pytest.raises(DataError, match="target"):
        train_method("bradley_terry", loop, BradleyTerryConfig(soft_targets=True))
    assert len(load_pairs(rows(2, 0)).records) == 2


class FailingTeacher(WordTeacher):
    def compare(self, prompts, a, b):
        pytest.fail("the teacher labeled the pairs again")


def test_distillation_reuses_the_teachers_saved_labels_only_for_the_same_pairs_and_teacher(tmp_path, tiny_model_dir,
                                                                                          monkeypatch):
    data = write(tmp_path / "pool.jsonl", [{"prompt": r["prompt"], "response_a": r["chosen"], "response_b": r["rejected"]}
                                           for r in rows(16, 5)])
    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    (teacher_dir / "rewardkit.json").write_text(json.dumps({"kind": "generative_judge"}))
    (teacher_dir / "model.safetensors").write_bytes(b"weights one")
    teacher = [WordTeacher()]
    real_load = load_reward_model
    monkeypatch.setattr("rewardkit.methods.load.load_reward_model",
                        lambda path, **k: teacher[0] if str(path) == str(teacher_dir) else real_load(path, **k))
    loop = LoopConfig(model=str(tiny_model_dir), data=[str(data)], output=str(tmp_path / "student"), max_steps=1,
                      batch_size=8, max_length=128, save_every=10**6, mixed_precision="no")
    first = distill(loop, BradleyTerryConfig(), DistillConfig(teacher=str(teacher_dir)))
    saved = json.loads((tmp_path / "student" / "teacher_verdicts.json").read_text())["p_first"]
    assert first["labels_reused"] is False and len(saved) == 16 and all(p > 0.5 for p in saved)
    # a crash after labeling: the rerun trains on the saved verdicts and never asks the teacher
    teacher[0] = FailingTeacher()
    monkeypatch.setattr("rewardkit.recipes.distill.throughput", lambda *a: {"batch": "", "student_rewards_per_s": 0,
                                                                           "teacher_rewards_per_s": 0, "speedup": 0})
    again = distill(loop, BradleyTerryConfig(), DistillConfig(teacher=str(teacher_dir)))
    assert again["labels_reused"] is True
    assert "saved verdicts, reused" in (tmp_path / "student" / "distill_report.md").read_text()
    # a retrained teacher (other weights in the same directory) labels again
    (teacher_dir / "model.safetensors").write_bytes(b"weights two")
    with pytest.raises(pytest.fail.Exception, match="labeled the pairs again"):
        distill(loop, BradleyTerryConfig(), DistillConfig(teacher=str(teacher_dir)))
    # so do other pairs with the first teacher
    (teacher_dir / "model.safetensors").write_bytes(b"weights one")
    write(data, [{"prompt": r["prompt"], "response_a": r["rejected"], "response_b": r["chosen"]} for r in rows(16, 5)])
    with pytest.raises(pytest.fail.Exception, match="labeled the pairs again"):
        distill(loop, BradleyTerryConfig(), DistillConfig(teacher=str(teacher_dir)))
