"""The quality study (bench/quality_study.py) trains on whole rows: pairs that fit are chosen,
none is cut; it resumes finished arms and draws even shares of the training sources."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rewardkit.data.templates import default_judge_template
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.recipes.partial_finetune import PartialFineTune

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from quality_study import OOD, QualityStudy, study_slices, training_truncation  # noqa: E402


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_study_slices_take_only_pairs_that_fit(tmp_path, tiny_model_dir, tokenizer):
    long = "a long answer that goes on " * 40
    rows = []
    for i in range(24):  # every third training pair is too long to fit in 400 tokens
        answer = long if i % 3 == 0 else f"short answer {i}"
        rows.append({"prompt": f"question {i}?", "chosen": answer, "rejected": f"no {i}", "subset": "train",
                     "score_chosen": 5, "score_rejected": 1 if i % 2 else 4.5})
    rows += [{"prompt": f"held {i}?", "chosen": long, "rejected": "x", "subset": "eval", "score_chosen": 5,
              "score_rejected": 1} for i in range(4)]
    _write(tmp_path / "ultrafeedback_binarized_subset.jsonl", rows)
    for file in OOD.values():
        _write(tmp_path / file, [{"prompt": "q?", "chosen": long, "rejected": "b"}] * 3)
    study = QualityStudy(data_dir=str(tmp_path), model=str(tiny_model_dir), train_pairs=100, pretrain_pairs=100,
                         eval_pairs=3, settings=PartialFineTune(max_length=400))
    slices = study_slices(study, str(tiny_model_dir))
    encoder = SegmentEncoder(tokenizer, default_judge_template(), 10**6)
    fits = [len(encoder.encode(p.prompt, p.chosen, p.rejected).input_ids) <= 400 for p in slices["train"] + slices["pool"]]
    assert fits and all(fits)
    # clear pairs (margin ≥ 2) that fit go to training, the other pairs that fit to the pool; the long ones nowhere
    assert len(slices["train"]) == 8 and len(slices["pool"]) == 8
    assert all(p.margin >= 2 for p in slices["train"]) and all(p.margin < 2 for p in slices["pool"])
    # evaluation slices are never filtered: they are scored whole at the model's own limit
    assert len(slices["in_domain"]) == 3 and all(len(slices[name]) == 3 for name in OOD)
    assert study.score_max_length is None


def test_training_truncation_sums_an_arms_runs(tmp_path):
    (tmp_path / "gram_ls0.1").mkdir()
    (tmp_path / "gram_ls0.1_stage1").mkdir()
    (tmp_path / "gram_ls0.1" / "summary.json").write_text(json.dumps({"train_features": 40, "truncated_rows": 3}))
    (tmp_path / "gram_ls0.1_stage1" / "summary.json").write_text(json.dumps({"train_features": 10, "truncated_rows": 1}))
    assert training_truncation(tmp_path, "gram_ls0.1") == {"rows": 50, "truncated_rows": 4}
    assert training_truncation(tmp_path, "zero_shot") == {"rows": 0, "truncated_rows": 0}


def test_run_quality_resumes_finished_arms_and_retrains_on_other_settings(tmp_path, tiny_model_dir, monkeypatch):
    from dataclasses import asdict

    import quality_study as quality

    rows = [{"prompt": f"q{i}?", "chosen": f"yes {i}", "rejected": f"no {i}", "subset": "train" if i < 8 else "eval",
             "score_chosen": 5, "score_rejected": 1} for i in range(12)]
    _write(tmp_path / "ultrafeedback_binarized_subset.jsonl", rows)
    for file in OOD.values():
        _write(tmp_path / file, rows[:3])
    trained = []
    monkeypatch.setattr(quality, "train_arm", lambda study, arm, base, slices, output: trained.append(arm) or (base, 1.0))
    study = QualityStudy(data_dir=str(tmp_path), model=str(tiny_model_dir), eval_pairs=3, arms=["zero_shot", "bt"],
                         settings=PartialFineTune(max_length=400))
    out = tmp_path / "run"
    first = quality.run_quality(study, out, log=lambda line: None)
    assert trained == ["zero_shot", "bt"] and set(first["arms"]) == {"zero_shot", "bt"}
    more = QualityStudy(**{**asdict(study), "arms": ["zero_shot", "bt", "judge_ls0.1"],
                           "settings": PartialFineTune(max_length=400)})
    resumed = quality.run_quality(more, out, log=lambda line: None)
    assert trained == ["zero_shot", "bt", "judge_ls0.1"]  # the finished arms were not trained again
    assert resumed["arms"]["bt"] == first["arms"]["bt"] and list(resumed["arms"]) == ["zero_shot", "bt", "judge_ls0.1"]
    other = QualityStudy(**{**asdict(more), "epochs": 2.0, "settings": PartialFineTune(max_length=400)})
    quality.run_quality(other, out, log=lambda line: None)
    assert trained[3:] == ["zero_shot", "bt", "judge_ls0.1"]  # other settings: nothing is reused


def test_study_slices_take_an_even_share_of_each_training_source_without_moving_the_eval_slices(
        tmp_path, tiny_model_dir, tokenizer):
    from quality_study import TRAINING_SOURCES

    from rewardkit.data.balance import even_shares

    long = "a long answer that goes on " * 40
    uf = [{"prompt": f"question {i}?", "chosen": f"short answer {i}", "rejected": f"no {i}", "subset": "train",
           "score_chosen": 5, "score_rejected": 1} for i in range(12)]
    uf += [{"prompt": f"held {i}?", "chosen": "yes", "rejected": "x", "subset": "eval", "score_chosen": 5,
            "score_rejected": 1} for i in range(6)]
    _write(tmp_path / "ultrafeedback_binarized_subset.jsonl", uf)
    # PandaLM: 9 pairs, every third too long to fit; HH helpful: only 2 pairs
    _write(tmp_path / TRAINING_SOURCES["pandalm"], [{"prompt": f"panda {i}?", "chosen": long if i % 3 == 0 else f"p {i}",
                                                     "rejected": f"q {i}"} for i in range(9)])
    _write(tmp_path / TRAINING_SOURCES["hh_helpful"], [{"prompt": f"hh {i}?", "chosen": f"h {i}", "rejected": f"k {i}"}
                                                       for i in range(2)])
    for file in OOD.values():
        _write(tmp_path / file, [{"prompt": f"q{i}?", "chosen": f"a{i}", "rejected": f"b{i}"} for i in range(8)])

    def study(sources):
        return QualityStudy(data_dir=str(tmp_path), model=str(tiny_model_dir), train_pairs=15, pretrain_pairs=4,
                            eval_pairs=4, settings=PartialFineTune(max_length=400), train_sources=sources)

    only_uf = study_slices(study(["ultrafeedback"]), str(tiny_model_dir))
    mixed = study_slices(study(["ultrafeedback", "pandalm", "hh_helpful"]), str(tiny_model_dir))
    by_source = {}
    for pair in mixed["train"]:
        by_source.setdefault(pair.prompt.split()[0], []).append(pair)
    # 15 asked: HH gives its 2, PandaLM its 6 that fit, UltraFeedback the other 7
    assert {k: len(v) for k, v in by_source.items()} == {"question": 7, "panda": 6, "hh": 2}
    assert all(len(p.chosen) < 100 for p in by_source["panda"])
    assert mixed["train"][:7] == only_uf["train"][:7]  # UltraFeedback's share: the first of the same clear pairs
    for name in ("in_domain", *OOD):  # the evaluation slices do not move when sources are added
        assert [p.prompt for p in mixed[name]] == [p.prompt for p in only_uf[name]]
    assert even_shares({"a": [1, 2, 3], "b": [4]}, 3) == [1, 2, 4]


def test_the_quality_table_gives_intervals_and_paired_differences():
    from quality_study import quality_table

    def evals(outcomes_by_set):
        out = {}
        for name, outcomes in outcomes_by_set.items():
            out[name] = {"accuracy": sum(outcomes) / len(outcomes), "accuracy_ci95": [0.1, 0.9], "outcomes": outcomes,
                         "prompt_keys": [f"{name}{i}" for i in range(len(outcomes))], "position_consistency": None,
                         "ece": 0.0, "length_bias": {"chosen_longer": {"accuracy": None}, "chosen_shorter": {"accuracy": None}}}
        return out

    sets = ["in_domain", "llmbar", "hhh"]
    same = {"in_domain": [1.0, 0.0] * 20, "llmbar": [1.0, 0.0] * 20, "hhh": [0.0, 1.0] * 20}
    better = {name: [1.0] * 40 for name in sets}
    results = {"arms": {"zero_shot": {"train_seconds": 0, "eval": evals(same)},
                        "copy": {"train_seconds": 1, "eval": evals(same)},
                        "better": {"train_seconds": 2, "eval": evals(better)}}}
    table = quality_table(results, sets)
    assert "| zero_shot | 0 | 0.500 [0.100, 0.900] |" in table
    copy_row = next(line for line in table.splitlines() if line.startswith("| copy |") and "within noise" in line)
    assert copy_row.count("+0.000 [+0.000, +0.000], within noise") == 4  # three sets and the OOD mean
    better_row = [line for line in table.splitlines() if line.startswith("| better |")][-1]
    assert better_row.count("+0.500") == 4 and "within noise" not in better_row
