"""The demo end to end on a tiny model: every artefact the issue names, loadable models."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rewardkit.recipes.demo import DemoPlan, run_demo, work_units
from rewardkit.scoring import load_reward_model

TINY = DemoPlan(train_pairs=12, pretrain_pairs=6, eval_pairs=6, ood_pairs=4, finetune_epochs=1, pretrain_epochs=1,
                bt_epochs=1, max_length=512, bt_max_length=512, batch_size=4, train_layers=1, lr=1e-3)


def test_demo_writes_results_reports_and_loadable_models(tmp_path, tiny_model_dir):
    events = []
    results = run_demo(tmp_path / "demo", model=str(tiny_model_dir), plan=TINY,
                       on_event=lambda kind, data: events.append((kind, data)))
    saved = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    for name in ("zero_shot", "gram", "bt"):
        entry = saved[name]
        assert entry["num_pairs"] == TINY.eval_pairs and 0 <= entry["accuracy"] <= 1 and 0 <= entry["ece"] <= 1
        assert "position_consistency" in entry
        assert entry["out_of_domain"]["num_pairs"] == TINY.ood_pairs
    assert saved["bt"]["position_consistency"] is None or saved["bt"]["position_consistency"] == 1.0
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "| gram |" in report and "LLMBar Natural" in report
    assert (tmp_path / "demo" / "comparison.png").read_bytes()[:4] == b"\x89PNG"

    judge, bt = load_reward_model(str(tmp_path / "demo" / "gram")), load_reward_model(str(tmp_path / "demo" / "bt"))
    assert len(judge.compare(["q?"], ["yes"], ["no"])) == 1
    assert len(bt.reward(["q?", "q?"], ["yes", "no"])) == 2
    # partial fine-tuning: the bottom block is the base model's, the top block was trained
    base, trained = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "demo" / "gram" / "model.safetensors")
    assert torch.equal(base["model.layers.0.mlp.up_proj.weight"], trained["model.layers.0.mlp.up_proj.weight"])
    assert not torch.equal(base["model.layers.1.mlp.up_proj.weight"], trained["model.layers.1.mlp.up_proj.weight"])

    # the progress the CLI shows adds up to the planned work
    stages = [d["name"] for k, d in events if k == "stage"]
    assert stages == ["model", "zero_shot", "pretrain", "finetune", "bt", "eval_gram", "eval_bt", "best_of_n"]
    assert sum(d["pairs"] for k, d in events if k == "scored") == 3 * (TINY.eval_pairs + TINY.ood_pairs)
    assert work_units(TINY) > 0
    example = saved["best_of_n_example"]
    assert 0 <= example["best"] < len(example["candidates"]) == len(example["reward_vs_rejected_logodds"])


def test_plan_is_fitted_to_the_time_limit_from_the_probe():
    from rewardkit.recipes.demo import FULL
    from rewardkit.recipes.demo_sizing import CALIBRATION_PLAN, CALIBRATION_S, CALIBRATION_TPS, HEADROOM, estimate_seconds, fit_plan

    # at the calibration machine's speed the calibration plan's estimate is its measured time
    assert estimate_seconds(CALIBRATION_PLAN, CALIBRATION_TPS) == pytest.approx(CALIBRATION_S)
    fast = fit_plan(FULL, CALIBRATION_TPS * 2, 900)
    assert fast == FULL  # fits: nothing changes
    slow = fit_plan(FULL, CALIBRATION_TPS / 2, 900)
    assert slow.train_pairs < FULL.train_pairs and slow.pretrain_pairs < FULL.pretrain_pairs
    assert (slow.eval_pairs, slow.ood_pairs, slow.max_length) == (FULL.eval_pairs, FULL.ood_pairs, FULL.max_length)
    assert estimate_seconds(slow, CALIBRATION_TPS / 2) <= 900 * HEADROOM + 1
    # never below a floor that still trains something
    tiny = fit_plan(FULL, CALIBRATION_TPS / 100, 900)
    assert tiny.train_pairs == 16 and tiny.pretrain_pairs == 8
