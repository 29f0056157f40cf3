"""Each benchmark's own metric on crafted rows with hand-computed answers, the bootstrap
intervals on known cases, and the RewardBench 1 sections against the `rewardbench` package."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from rewardkit.eval.benchmarks import best_of_n, judgebench, rmbench
from rewardkit.eval.intervals import bootstrap_interval, paired_difference, weighted_strata_interval
from rewardkit.scoring.protocol import Comparison

REWARDBENCH = Path(__file__).resolve().parents[1] / ".venv" / "old-transformers" / "4.51.0" / "rewardbench"


def row(p, key="q", **extra):
    return {"p_chosen": p, "prompt_key": key, "file": "f", **extra}


def test_rmbench_hard_normal_easy_from_the_3x3_matrix():
    """Prompt 1 loses the two hard cells (0,1) and (0,2); prompt 2 loses the easy cell (1,0).
    Averaged matrix: those cells 0.5, the rest 1 — hard (0.5+0.5+1)/3, normal 1, easy (0.5+1+1)/3."""
    rows = []
    for key, lost, domain in (("p1", {(0, 1), (0, 2)}, "chat"), ("p2", {(1, 0)}, "math")):
        rows += [row(0.2 if (i, j) in lost else 0.9, key, chosen_style=i, rejected_style=j, subset=domain)
                 for i in range(3) for j in range(3)]
    rows.append(row(0.9, "p3", chosen_style="concise", rejected_style="detailed_markdown", subset="chat"))  # 1 of 9 cells
    result = rmbench(rows)
    assert result["prompts"] == 2 and result["incomplete_prompts"] == 1
    assert result["hard"] == pytest.approx(2 / 3) and result["normal"] == 1.0 and result["easy"] == pytest.approx(5 / 6)
    assert result["average"] == pytest.approx((2 / 3 + 1 + 5 / 6) / 3)
    assert result["matrix"][0] == [1.0, 0.5, 0.5] and result["matrix"][1] == [0.5, 1.0, 1.0]
    assert result["per_domain"]["chat"]["hard"] == pytest.approx(1 / 3) and result["per_domain"]["math"]["easy"] == pytest.approx(2 / 3)
    low, high = result["hard_ci95"]  # two prompts, hard 1/3 and 1: the resampled means lie between
    assert 1 / 3 <= low <= 2 / 3 <= high <= 1
    tie = [dict(r, p_chosen=0.5) for r in rows[:9]]
    assert rmbench(tie)["normal"] == 0.0  # a tie is not a win, as RM-Bench compares scores with '>'


def test_best_of_4_counts_a_prompt_only_when_the_chosen_answer_beats_all_three():
    rows = []
    for key, wins in (("a", [1, 1, 1]), ("b", [1, 1, 0]), ("c", [1, 1, 1])):
        rows += [row(0.8 if w else 0.3, key, chosen_style=0, rejected_style=j, subset="Focus") for j, w in enumerate(wins)]
    result = best_of_n(rows)
    assert result["accuracy"] == pytest.approx(2 / 3) and result["prompts"] == 3 and result["candidates"] == [4]
    assert sum(r["p_chosen"] > 0.5 for r in rows) / len(rows) == pytest.approx(8 / 9)  # pairwise would say 0.889


def test_judgebench_is_a_micro_average_over_pairs_with_both_orders():
    """math: 3 pairs right (one with a tie in one order); code: 1 pair the two orders disagree on.
    Micro 3/4 = 0.75; the mean over sources would be (1 + 0) / 2 = 0.5."""
    rows = [row(0.8, "m1", source="math", p_chosen_first=0.8, p_chosen_second=0.8),
            row(0.7, "m2", source="math", p_chosen_first=0.9, p_chosen_second=0.6),
            row(0.6, "m3", source="math", p_chosen_first=0.7, p_chosen_second=0.5),
            row(0.55, "c1", source="code", p_chosen_first=0.8, p_chosen_second=0.3)]
    result = judgebench(rows)
    assert result["accuracy"] == 0.75 and result["macro_accuracy"] == 0.5 and result["inconsistent"] == 1
    assert result["per_source"]["code"]["accuracy"] == 0.0 and result["per_source"]["math"]["pairs"] == 3
    assert judgebench([row(0.5, "t", source="x", p_chosen_first=0.5, p_chosen_second=0.5)])["accuracy"] == 0.0


def test_the_bootstrap_on_known_cases():
    assert bootstrap_interval([0.7] * 50) == pytest.approx([0.7, 0.7], abs=1e-12)
    values = [1.0] * 280 + [0.0] * 120  # p = 0.7, n = 400: the normal approximation gives ±0.0449
    low, high = bootstrap_interval(values, seed=3)
    assert low == pytest.approx(0.7 - 0.0449, abs=0.01) and high == pytest.approx(0.7 + 0.0449, abs=0.01)
    assert bootstrap_interval(values, seed=3) == [low, high]  # a fixed seed: the same interval

    # by hand: the same draws, one loop per resample
    clusters = [i // 3 for i in range(30)]
    rng_values = np.random.default_rng(7).random(30)
    draws = np.random.default_rng(11).integers(0, 10, size=(500, 10))
    by_hand = []
    for drawn in draws:
        picked = [v for c in drawn for v, k in zip(rng_values, clusters) if k == c]
        by_hand.append(sum(picked) / len(picked))
    assert bootstrap_interval(list(rng_values), clusters, resamples=500, seed=11) == \
        pytest.approx(list(np.quantile(by_hand, [0.025, 0.975])), abs=1e-12)


def test_a_prompts_rows_are_one_cluster():
    """Nine copies of each prompt's outcome carry no more evidence than one: clustered by prompt,
    the interval is the single-row one; treated as independent rows it would be three times narrower."""
    outcomes = [1.0] * 30 + [0.0] * 20
    single = bootstrap_interval(outcomes, seed=0)
    ninefold = [o for o in outcomes for _ in range(9)]
    keys = [i for i in range(50) for _ in range(9)]
    assert bootstrap_interval(ninefold, keys, seed=0) == pytest.approx(single)
    naive = bootstrap_interval(ninefold, seed=0)
    assert (naive[1] - naive[0]) < 0.45 * (single[1] - single[0])


def test_paired_differences_say_within_noise_when_the_interval_holds_zero():
    a = [1.0, 0.0] * 50
    same = paired_difference(a, a)
    assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0] and same["within_noise"]
    better = paired_difference(a, [1.0] * 100)
    assert better["difference"] == 0.5 and better["ci95"][0] > 0 and not better["within_noise"]
    rng = np.random.default_rng(0)
    noisy = paired_difference(list(rng.integers(0, 2, 60)), list(rng.integers(0, 2, 60)))
    assert noisy["ci95"][0] < 0 < noisy["ci95"][1] and noisy["within_noise"]
    with pytest.raises(ValueError, match="same rows"):
        paired_difference([1.0], [1.0, 0.0])


def test_a_weighted_score_of_strata_has_its_interval_inside_its_strata():
    strata = {"a": ([1.0] * 10, list(range(10))), "b": ([0.0] * 5 + [1.0] * 5, list(range(10)))}
    low, high = weighted_strata_interval(strata, {"a": 3, "b": 1})
    assert low <= (3 * 1.0 + 1 * 0.5) / 4 <= high and low >= 0.75 and high <= 1.0


def _package_section_scores():
    """rewardbench 0.1.4's constants and its `calculate_scores_per_section`, read from the
    installed package (its utils module imports fastchat and a GPU stack; the function itself
    is plain Python, so it is taken from the source as written)."""
    assert (REWARDBENCH / "constants.py").is_file(), "rewardbench 0.1.4 is not installed (scripts/setup_test_clients.sh)"
    spec = importlib.util.spec_from_file_location("rewardbench_constants", REWARDBENCH / "constants.py")
    constants = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(constants)
    tree = ast.parse((REWARDBENCH / "utils.py").read_text())
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "calculate_scores_per_section")
    namespace: dict = {}
    exec(compile(ast.Module([function], []), "rewardbench/utils.py", "exec"), namespace)
    return constants, namespace["calculate_scores_per_section"]


def test_rewardbench_sections_match_the_rewardbench_package_on_the_same_outcomes():
    from rewardkit.eval.rewardbench import EXAMPLE_COUNTS, SECTIONS, section_scores

    constants, calculate = _package_section_scores()
    assert EXAMPLE_COUNTS == constants.EXAMPLE_COUNTS and SECTIONS == constants.SUBSET_MAPPING
    rng = np.random.default_rng(0)
    outcomes = {subset: list(rng.random(40) > rng.random()) for subset in EXAMPLE_COUNTS}  # per-pair right/wrong
    accuracy = {subset: float(np.mean(v)) for subset, v in outcomes.items()}
    ours, theirs = section_scores(accuracy), calculate(constants.EXAMPLE_COUNTS, constants.SUBSET_MAPPING, accuracy)
    assert {s: v["score"] for s, v in ours.items()} == pytest.approx(theirs, abs=1e-12)
    partial = {k: v for k, v in accuracy.items() if k not in ("math-prm", "hep-go", "donotanswer")}
    ours, theirs = section_scores(partial), calculate(constants.EXAMPLE_COUNTS, constants.SUBSET_MAPPING, partial)
    assert {s: v["score"] for s, v in ours.items()} == pytest.approx(theirs, abs=1e-12)
    assert not ours["Reasoning"]["complete"] and ours["Chat"]["complete"]


class TableScorer:
    """P(first better) from a table of (first, second) → p; a pairwise judge for the runner."""

    kind, pointwise = "generative_judge", False

    def __init__(self, table):
        self.table = table

    def compare_details(self, prompts, a, b, both_orders=True):
        out = []
        for x, y in zip(a, b):
            p = self.table.get((x, y), 0.9)
            out.append(Comparison(p, p, p))
        return out


def test_eval_reports_each_benchmark_metric_and_intervals_from_its_files(tmp_path):
    from rewardkit.eval import evaluate_files, write_report

    rm = tmp_path / "rm.jsonl"
    rm.write_text("".join(json.dumps({"id": i, "prompt": f"q{i}", "chosen": [f"c{i}-{s}" for s in range(3)],
                                      "rejected": [f"r{i}-{s}" for s in range(3)], "domain": "chat"}) + "\n"
                          for i in range(4)))
    jb = tmp_path / "jb.jsonl"
    jb.write_text("".join(json.dumps({"pair_id": i, "question": f"j{i}", "response_A": f"a{i}", "response_B": f"b{i}",
                                      "label": "A>B", "source": "math" if i < 3 else "code"}) + "\n" for i in range(4)))
    # prompt 0 loses its hard cell (0, 2); judgebench pair 3 is lost
    scorer = TableScorer({("c0-0", "r0-2"): 0.1, ("a3", "b3"): 0.2})
    results, rows = evaluate_files(scorer, [rm, jb])
    rmb = results["per_file"]["rm.jsonl"]["benchmarks"]["rmbench"]
    assert rmb["prompts"] == 4 and rmb["hard"] == pytest.approx((2 / 3 + 3) / 4) and rmb["normal"] == 1.0
    judge = results["per_file"]["jb.jsonl"]["benchmarks"]["judgebench"]
    assert judge["accuracy"] == 0.75 and judge["macro_accuracy"] == 0.5
    assert results["accuracy_ci95"][0] <= results["accuracy"] <= results["accuracy_ci95"][1]
    assert all(len(v["accuracy_ci95"]) == 2 for v in results["per_subset"].values())
    write_report(tmp_path / "ev", results, rows, model="table")
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "## RM-Bench (rm.jsonl: 4 prompts)" in report and "## JudgeBench (jb.jsonl: 4 pairs, both orders)" in report
    assert f"{results['accuracy']:.3f} [{results['accuracy_ci95'][0]:.3f}, {results['accuracy_ci95'][1]:.3f}]" in report


def test_eval_with_two_models_reports_the_paired_difference(tmp_path, tiny_model_dir):
    from tiny import save_tiny
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    other = save_tiny(tmp_path / "other", seed=5)
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"question {i}?", "chosen": f"good answer {i}",
                                        "rejected": "bad " * (i % 4 + 1)}) + "\n" for i in range(12)))
    result = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--model", str(tiny_model_dir),
                                      "--model", str(other), "--data", str(data), "--output", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    comparison = json.loads((tmp_path / "ev" / "comparison.json").read_text())
    same = comparison["models"]["tiny-model0-2"]["overall"]
    assert comparison["baseline"] == "tiny-model0" and same["difference"] == 0.0 and same["within_noise"]
    a = json.loads((tmp_path / "ev" / "tiny-model0" / "results.json").read_text())
    b = json.loads((tmp_path / "ev" / "other" / "results.json").read_text())
    assert comparison["models"]["other"]["overall"]["difference"] == pytest.approx(b["accuracy"] - a["accuracy"])
    report = (tmp_path / "ev" / "comparison.md").read_text()
    assert "| tiny-model0-2 | 12 |" in report and "+0.000 [+0.000, +0.000], within noise" in report
    assert "tiny-model0-2 − tiny-model0: accuracy +0.000 [+0.000, +0.000], within noise" in result.output


LONG = "Explain in simple words why the sky looks blue on a clear day and red at sunset please"  # 18 words


def _pairs(path, prompts):
    path.write_text("".join(json.dumps({"prompt": p, "chosen": "a good answer", "rejected": "a bad one"}) + "\n"
                            for p in prompts))
    return path


def test_overlap_counts_exact_prompts_and_long_shared_runs_per_file(tmp_path):
    from rewardkit.data.overlap import OverlapIndex, overlap_report

    train_a = _pairs(tmp_path / "a.jsonl", ["What is 2+2?", "Name a prime number.", f"Context: {LONG}. Answer briefly."])
    train_b = _pairs(tmp_path / "b.jsonl", ["Tell me a joke"])
    held = _pairs(tmp_path / "held.jsonl", [
        "what is 2 + 2",                 # exact after normalising case, spaces and punctuation
        LONG,                            # 18 words, 13 of them in a row inside a training prompt
        "Explain in simple words why the sky looks green",  # shares 7 words only: clean
        "Tell me a joke!",               # exact, from b
        "Something else entirely"])
    report = overlap_report(OverlapIndex.from_files([train_a, train_b]), [held])
    entry = report["eval"][str(held)]
    assert (entry["rows"], entry["exact"], entry["ngram"], entry["contaminated"]) == (5, 2, 1, 3)
    assert entry["by_train_file"] == {str(train_a): 2, str(train_b): 1}
    shorter = overlap_report(OverlapIndex.from_files([train_a], ngram=5), [held])["eval"][str(held)]
    assert shorter["ngram"] == 2  # with 5-word runs the 'sky looks green' prompt overlaps too


def test_data_overlap_and_eval_exclude_overlap_with(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    train_file = _pairs(tmp_path / "train.jsonl", ["What is 2+2?", LONG])
    held = _pairs(tmp_path / "held.jsonl", ["what is 2 + 2", LONG, "a fresh question", "another fresh one"])
    result = CliRunner().invoke(app, ["data", "overlap", "--train", str(train_file), "--eval", str(held),
                                      "--output", str(tmp_path / "overlap.json")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "overlap.json").read_text())["eval"][str(held)]["contaminated"] == 2
    assert "2 rows overlap" in result.output
    result = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--data", str(held), "--output",
                                      str(tmp_path / "ev"), "--exclude-overlap-with", str(train_file)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert results["num_pairs"] == 2 and results["per_file"]["held.jsonl"]["excluded_overlap"] == 2
    assert results["decontamination"]["excluded"] == 2
    assert "Decontamination: 2 rows left out" in (tmp_path / "ev" / "report.md").read_text()


def test_recipes_warn_when_their_pool_holds_evaluation_prompts(tmp_path, tiny_model_dir):
    from rewardkit import LoopConfig
    from rewardkit.data.overlap import ContaminationWarning
    from rewardkit.methods.bradley_terry import BradleyTerryConfig
    from rewardkit.methods.judge import JudgeConfig
    from rewardkit.recipes.distill import DistillConfig, distill
    from rewardkit.recipes.self_training import SelfTrainConfig, self_train

    labeled = _pairs(tmp_path / "labeled.jsonl", [f"labeled question {i}" for i in range(4)])
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"prompt": p, "response_a": "one", "response_b": "two"}) + "\n"
                            for p in ["held question 0", "pool question"]))
    held = _pairs(tmp_path / "held.jsonl", ["held question 0", "held question 1"])
    loop = LoopConfig(model=str(tiny_model_dir), data=[], eval_data=[str(held)], output=str(tmp_path / "self"),
                      max_steps=1, batch_size=2, save_every=10**6)
    with pytest.warns(ContaminationWarning, match="the self-training pool overlaps the evaluation data: 1 of 2 rows"):
        self_train(loop, JudgeConfig(), SelfTrainConfig(labeled=[str(labeled)], unlabeled=[str(pool)], rounds=1,
                                                             keep_share=0.5))
    student = LoopConfig(model=str(tiny_model_dir), data=[str(pool)], eval_data=[str(held)],
                         output=str(tmp_path / "student"), max_steps=1, batch_size=2, save_every=10**6)
    with pytest.warns(ContaminationWarning, match="the pool the teacher labels overlaps"):
        distill(student, BradleyTerryConfig(), DistillConfig(teacher=str(tmp_path / "self" / "round-0")))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ContaminationWarning)  # a clean pool: no warning
        from rewardkit.data.overlap import warn_if_overlapping

        assert warn_if_overlapping([labeled], [held], "labeled") is None


def test_rewardbench2_ties_score_by_hand():
    """Prompt 1: ref correct [5] vs [1, 2, 3] (gap 2); tied correct [4, 6] (spread 2) vs [1, 3]
    (gap 1). Prompt 2: ref [2] vs [3] (gap −1, wrong); tied [5, 5.5] (spread 0.5) vs [2] (gap 3).
    ref accuracy 1/2, tied 1; gap > spread in 1 of 2; min(ref gap, tied gap) > spread in 0 of 2;
    margins tanh(1/2 − 1) and tanh(−1/0.5 − 1)."""
    import math

    from rewardkit.eval.benchmarks import benchmark_metrics, rewardbench2_ties

    def group(base, correct, incorrect):
        return [{"id": f"{base}:{i}-{j}", "subset": "Ties", "file": "rb2", "prompt_key": base, "chosen_style": i,
                 "rejected_style": j, "reward_chosen": c, "reward_rejected": r, "p_chosen": 0.5}
                for i, c in enumerate(correct) for j, r in enumerate(incorrect)]

    rows = (group("ref:1", [5], [1, 2, 3]) + group("tied:1", [4, 6], [1, 3]) + group("ref:2", [2], [3])
            + group("tied:2", [5, 5.5], [2]))
    result = rewardbench2_ties(rows)
    margin = (math.tanh(0.5 - 1) + math.tanh(-2 - 1)) / 2
    assert result["ref_accuracy"] == 0.5 and result["tied_accuracy"] == 1.0
    assert result["correctness_preferred"] == 0.5 and result["correctness_preferred_hard"] == 0.0
    assert result["score"] == pytest.approx(0.3 * 1 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0 + 0.01 * margin)
    judged = [{k: v for k, v in r.items() if k not in ("reward_chosen", "reward_rejected")} for r in rows]
    assert "not_applicable" in benchmark_metrics(judged, "rmbench")["rewardbench2_ties"]  # a pairwise judge
    focus = [row(0.9, "f1", id="7:0-0", chosen_style=0, rejected_style=0, subset="Focus"),
             row(0.9, "f1", id="7:0-1", chosen_style=0, rejected_style=1, subset="Focus")]
    official = benchmark_metrics(focus + rows, "rmbench")
    assert official["best_of_n"]["prompts"] == 1 and "rewardbench2_ties" in official  # Ties kept out of best-of-n
