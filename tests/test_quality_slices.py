"""The quality study trains on whole rows: pairs that fit are chosen, none is cut."""

from __future__ import annotations

import json

from rewardkit.data.templates import default_judge_template
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.recipes.partial_finetune import PartialFineTune
from rewardkit.recipes.quality import OOD, QualityStudy, study_slices, training_truncation


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

    import rewardkit.recipes.quality as quality

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
