"""The demo end to end on a tiny model: every artefact the issue names, loadable models."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rewardkit import load_reward_model
from rewardkit.recipes.demo import DemoPlan, run_demo, work_units

TINY = DemoPlan(train_pairs=12, pretrain_pairs=6, eval_pairs=6, ood_pairs=4, finetune_epochs=1, pretrain_epochs=1,
                bt_epochs=1, max_length=2048, bt_max_length=2048, batch_size=4, batch_tokens=4096, train_layers=1,
                lr=1e-3)


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
    # intervals and paired differences (issue 29): every accuracy with its interval, B − A on the same pairs
    for name in ("zero_shot", "gram", "bt"):
        for figures in (saved[name], saved[name]["out_of_domain"]):
            low, high = figures["accuracy_ci95"]
            assert low <= figures["accuracy"] <= high
    for part in ("heldout", "ood"):
        diff = saved["paired"][part]["gram − zero_shot"]
        expected = saved["gram"]["accuracy"] - saved["zero_shot"]["accuracy"] if part == "heldout" else \
            saved["gram"]["out_of_domain"]["accuracy"] - saved["zero_shot"]["out_of_domain"]["accuracy"]
        assert diff["difference"] == pytest.approx(expected) and diff["within_noise"] == (diff["ci95"][0] <= 0 <= diff["ci95"][1])
    assert "| gram − zero_shot |" in report and "paired bootstrap" in report
    gram = saved["gram"]
    assert f"{gram['accuracy']:.3f} [{gram['accuracy_ci95'][0]:.3f}, {gram['accuracy_ci95'][1]:.3f}]" in report
    assert (tmp_path / "demo" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    # whole rows: the slices take pairs that fit, so nothing is cut in training or in scoring
    assert saved["slices"] == {"train": TINY.train_pairs, "pretrain": TINY.pretrain_pairs, "heldout": TINY.eval_pairs,
                               "ood": TINY.ood_pairs}
    assert all(t["truncated_rows"] == 0 and t["rows"] > 0 for t in saved["training_truncation"].values())
    for name in ("zero_shot", "gram", "bt"):
        for figures in (saved[name], saved[name]["out_of_domain"]):
            assert figures["truncation"]["truncated_rows"] == 0 and figures["truncation"]["rows"] > 0
    assert "Rows truncated: 0 of" in report

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
    from dataclasses import replace

    from rewardkit.recipes.demo import FULL
    from rewardkit.recipes.demo_plan import (
        CALIBRATION_S,
        CALIBRATION_TOKENS,
        CALIBRATION_TPS,
        HEADROOM,
        KIND_FACTOR,
        RowLengths,
        estimate_seconds,
        fit_plan,
        plan_tokens,
    )

    lengths = RowLengths(train=[400] * 300, heldout=[500] * 100, ood=[300] * 40)
    # tokens of work, counted by hand: 3 models × 2 orders × scored rows; stage 1 one row per pair
    # (cache + 1 epoch); the judge two rows per pair (cache + 1 epoch); BT about one judge row per pair, twice
    small = replace(FULL, train_pairs=10, pretrain_pairs=4, eval_pairs=2, ood_pairs=1)
    assert plan_tokens(small, lengths) == 6 * (2 * 500 + 300) + 4 * 400 * 2 + 2 * 10 * 400 * 2 + 10 * 400 * 2
    # at the calibration machine's speed, work equal to the calibration's takes its measured time
    calibrated = RowLengths(train=[0] * 300, heldout=[CALIBRATION_TOKENS / (6 * FULL.eval_pairs)] * 100, ood=[0] * 40)
    assert estimate_seconds(FULL, CALIBRATION_TPS, calibrated, kind="fp32") == pytest.approx(CALIBRATION_S)
    # on a bf16 CPU the same work is estimated slower, by the ratio measured there
    assert estimate_seconds(FULL, CALIBRATION_TPS, calibrated, kind="bf16") == pytest.approx(
        CALIBRATION_S * KIND_FACTOR["bf16"]) and KIND_FACTOR["bf16"] > 1
    fast = fit_plan(FULL, CALIBRATION_TPS * 4, 900, lengths, kind="fp32")
    assert fast == FULL  # fits: nothing changes
    slow = fit_plan(FULL, CALIBRATION_TPS / 2, 900, lengths, kind="fp32")
    assert slow.train_pairs < FULL.train_pairs and slow.pretrain_pairs < FULL.pretrain_pairs
    assert (slow.eval_pairs, slow.ood_pairs, slow.max_length) == (FULL.eval_pairs, FULL.ood_pairs, FULL.max_length)
    assert estimate_seconds(slow, CALIBRATION_TPS / 2, lengths, kind="fp32") <= 900 * HEADROOM
    # the most pairs that fit: one more would be over
    assert estimate_seconds(replace(slow, train_pairs=slow.train_pairs + 1), CALIBRATION_TPS / 2, lengths,
                            kind="fp32") > 900 * HEADROOM
    # never below a floor that still trains something
    tiny = fit_plan(FULL, CALIBRATION_TPS / 100, 900, lengths, kind="fp32")
    assert tiny.train_pairs == 16 and tiny.pretrain_pairs == 8
