"""`rewardkit adapt` (few-shot domain adaptation) and weight averaging: K respected exactly, the
endpoints α = 0 and 1 are the base's and the adapted model's weights and scores, per-layer α by
pattern, and bad options refused before anything trains."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from rewardkit import LoopConfig, load_reward_model
from rewardkit.errors import ConfigError
from rewardkit.models.averaging import average_state_dicts, read_weights
from rewardkit.recipes.adapt import AdaptConfig, adapt


def test_average_state_dicts_by_hand_and_by_pattern():
    adapted = {"layers.0.w": torch.tensor([2.0, 4.0]), "layers.1.w": torch.tensor([2.0]), "head": torch.tensor([7.0]),
               "steps": torch.tensor([3])}
    base = {"layers.0.w": torch.tensor([0.0, 0.0]), "layers.1.w": torch.tensor([1.0]), "steps": torch.tensor([1])}
    out, report = average_state_dicts(adapted, base, 0.25, {r"layers\.1\.": 1.0})
    assert out["layers.0.w"].tolist() == [0.5, 1.0]  # 0.25·adapted + 0.75·base
    assert out["layers.1.w"].tolist() == [2.0]  # its own α = 1
    assert out["head"].tolist() == [7.0] and report["kept_from_adapted"] == ["head"]
    assert out["steps"].tolist() == [3]  # integers are not interpolated
    for alpha, expected in ((0.0, base), (1.0, adapted)):
        ends, _ = average_state_dicts(adapted, base, alpha)
        assert torch.equal(ends["layers.0.w"], expected["layers.0.w"])
    with pytest.raises(ConfigError, match="not the same architecture"):
        average_state_dicts({"w": torch.zeros(2)}, {"w": torch.zeros(3)}, 0.5)
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\]"):
        average_state_dicts(adapted, base, 1.5)


def domain_rows(n: int) -> list[dict]:
    return [{"id": f"d{i}", "prompt": f"Is {i} even?", "chosen": "yes" if i % 2 == 0 else "no",
             "rejected": "no" if i % 2 == 0 else "yes", "source": "domain"} for i in range(n)]


@pytest.fixture
def files(tmp_path):
    domain, general = tmp_path / "domain.jsonl", tmp_path / "general.jsonl"
    domain.write_text("".join(json.dumps(r) + "\n" for r in domain_rows(12)))
    general.write_text("".join(json.dumps({"prompt": f"q{i}", "chosen": "a kind answer", "rejected": "rude"}) + "\n"
                               for i in range(6)))
    return domain, general


def loop_for(tiny_model_dir, domain, output) -> LoopConfig:
    return LoopConfig(model=str(tiny_model_dir), data=[str(domain)], output=str(output), max_steps=2, lr=5e-3,
                      batch_size=2, max_length=512, warmup_ratio=0.0, save_every=10**6, mixed_precision="no", seed=0)


def test_adapt_uses_exactly_k_shots_and_reports_domain_and_general(tmp_path, tiny_model_dir, files):
    domain, general = files
    report = adapt(loop_for(tiny_model_dir, domain, tmp_path / "a"), AdaptConfig(shots=4, general_eval=[str(general)]))
    assert report["method"] == "judge" and report["shots"] == 4 and len(set(report["shot_ids"])) == 4
    assert report["training"]["train_features"] == 8  # 4 pairs, both orders
    assert report["held_out"] == 8  # the other 8 pairs of the file
    saved = json.loads((tmp_path / "a" / "adapt.json").read_text())
    assert saved["shot_ids"] == report["shot_ids"]
    for when in ("before", "after"):
        assert 0 <= saved[when]["domain"]["accuracy"] <= 1 and saved[when]["general"]["accuracy_ci95"] is not None
    assert saved["domain_gain"] == pytest.approx(saved["after"]["domain"]["accuracy"] - saved["before"]["domain"]["accuracy"])
    for gain, kept in (("domain_gain", "domain_gain_paired"), ("general_retained", "general_retained_paired")):
        paired = saved[kept]  # the same difference, with a paired interval over the same rows
        assert paired["difference"] == pytest.approx(saved[gain])
        low, high = paired["ci95"]
        assert low <= paired["difference"] <= high and paired["within_noise"] == (low <= 0 <= high)
    assert "rows" not in saved["before"] and "rows" not in saved["after"]  # per-pair credits are not kept
    again = adapt(loop_for(tiny_model_dir, domain, tmp_path / "b"), AdaptConfig(shots=4))
    assert again["shot_ids"] == report["shot_ids"]  # the seed decides the shots


def test_averaging_at_alpha_0_and_1_gives_the_endpoints_weights_and_scores(tmp_path, tiny_model_dir, files):
    domain, _ = files
    prompts, chosen, rejected = ["Is 40 even?", "Is 41 even?"], ["yes", "no"], ["no", "yes"]
    plain = adapt(loop_for(tiny_model_dir, domain, tmp_path / "plain"), AdaptConfig(shots=4))
    one = adapt(loop_for(tiny_model_dir, domain, tmp_path / "one"), AdaptConfig(shots=4, alpha=1.0))
    zero = adapt(loop_for(tiny_model_dir, domain, tmp_path / "zero"), AdaptConfig(shots=4, alpha=0.0))
    assert one["averaging"]["alpha"] == 1.0 and zero["averaging"]["base"] == str(tiny_model_dir)
    adapted, ends = read_weights(tmp_path / "plain"), {"one": read_weights(tmp_path / "one"),
                                                       "zero": read_weights(tmp_path / "zero")}
    base = read_weights(tiny_model_dir)
    assert adapted.keys() == ends["one"].keys()
    assert any(not torch.equal(adapted[k], base[k]) for k in adapted)  # the adaptation moved the weights
    assert all(torch.equal(adapted[k], ends["one"][k]) for k in adapted)
    assert all(torch.equal(base[k], ends["zero"][k]) for k in base)
    score = {name: load_reward_model(str(path), dtype="fp32").compare(prompts, chosen, rejected)
             for name, path in (("plain", tmp_path / "plain"), ("one", tmp_path / "one"),
                                ("zero", tmp_path / "zero"), ("base", tiny_model_dir))}
    assert score["one"] == score["plain"] and score["zero"] == score["base"]
    assert plain["after"]["domain"] == one["after"]["domain"]


def test_bad_adapt_options_are_refused_before_training(tmp_path, tiny_model_dir, files):
    from rewardkit.cli.main import app

    domain, _ = files
    with pytest.raises(ConfigError, match="--shots 12: the domain data has 12 pairs"):
        adapt(loop_for(tiny_model_dir, domain, tmp_path / "x"), AdaptConfig(shots=12))
    runner = CliRunner()
    base = ["adapt", "--model", str(tiny_model_dir), "--data", str(domain), "--output", str(tmp_path / "y")]
    for extra, message in ((["--average-with", str(tiny_model_dir)], "need --alpha"),
                           (["--alpha", "0.5", "--layer-alpha", "layers"], "write REGEX=ALPHA"),
                           (["--alpha", "0.5", "--layer-alpha", "layers=2"], "write REGEX=ALPHA"),
                           (["--method", "dpo"], "--method must be one of")):
        result = runner.invoke(app, base + extra)
        assert result.exit_code != 0 and message in result.output, (extra, result.output)
    assert not (tmp_path / "y" / "adapt.json").exists()


def test_shots_without_ids_are_named_by_their_row():
    from rewardkit.data import load_pairs
    from rewardkit.recipes.adapt import shot_ids, split_shots

    rows = [{k: v for k, v in r.items() if k != "id"} for r in domain_rows(10)]
    rows[3]["id"] = "kept"
    pairs = load_pairs(rows).records
    shots, _ = split_shots(pairs, 6, 4, seed=0)
    names = shot_ids(pairs, shots)
    assert len(set(names)) == 6
    for name, pair in zip(names, shots):
        index = 3 if name == "kept" else int(name.split()[1])
        assert pairs[index] is pair  # "row N" is the pair's index in the data


def test_a_held_out_file_of_its_own_is_the_same_rows_at_every_k(tmp_path, tiny_model_dir, files):
    from rewardkit.data.overlap import ContaminationWarning

    domain, _ = files
    held = tmp_path / "held.jsonl"
    held.write_text("".join(json.dumps({**r, "id": f"h{i}", "prompt": f"Is the number {100 + i} even?"}) + "\n"
                            for i, r in enumerate(domain_rows(5))))
    reports = {k: adapt(loop_for(tiny_model_dir, domain, tmp_path / f"k{k}"),
                        AdaptConfig(shots=k, held_out=3, held_out_data=[str(held)])) for k in (4, 12)}
    assert reports[12]["shots"] == 12  # every domain row may be a shot: none is held back
    assert reports[4]["shot_ids"] == reports[12]["shot_ids"][:4]  # the same seeded order, nested
    for report in reports.values():
        assert report["held_out"] == 3  # the file's first --held-out rows, whatever K
        assert report["before"]["domain"] == reports[4]["before"]["domain"]  # the same rows scored
    # a sweep scores the foundation once: its scores passed in give the very report scoring gives
    from rewardkit.data import load_pairs
    from rewardkit.recipes.adapt import accuracies

    scored = accuracies(str(tiny_model_dir), load_pairs(str(held)).records[:3], [], 0)
    reused = adapt(loop_for(tiny_model_dir, domain, tmp_path / "reused"),
                   AdaptConfig(shots=4, held_out=3, held_out_data=[str(held)]), before=scored)
    for key in ("before", "after", "domain_gain", "domain_gain_paired", "shot_ids"):
        assert reused[key] == reports[4][key]
    assert "rows" in scored  # the caller's scores are not consumed
    with pytest.raises(ConfigError, match="before: 3 domain rows scored, but 5 are held out here"):
        adapt(loop_for(tiny_model_dir, domain, tmp_path / "y"), AdaptConfig(shots=4, held_out=5, held_out_data=[str(held)]),
              before=scored)
    with pytest.raises(ConfigError, match="before: no 'general' scores"):
        adapt(loop_for(tiny_model_dir, domain, tmp_path / "z"),
              AdaptConfig(shots=4, held_out=3, held_out_data=[str(held)], general_eval=[str(held)]), before=scored)
    with pytest.raises(ConfigError, match="--shots 13: the domain data has only 12 pairs"):
        adapt(loop_for(tiny_model_dir, domain, tmp_path / "x"), AdaptConfig(shots=13, held_out_data=[str(held)]))
    with pytest.warns(ContaminationWarning, match="the domain file the shots come from overlaps"):
        adapt(loop_for(tiny_model_dir, domain, tmp_path / "dirty"), AdaptConfig(shots=2, held_out_data=[str(domain)]))


def test_models_average_builds_a_new_directory_without_training(tmp_path, tiny_model_dir, files):
    from rewardkit.cli.main import app

    domain, _ = files
    adapt(loop_for(tiny_model_dir, domain, tmp_path / "adapted"), AdaptConfig(shots=4))
    before = {p.name: p.read_bytes() for p in (tmp_path / "adapted").iterdir() if p.is_file()}
    runner = CliRunner()

    def average(output, *extra):
        return runner.invoke(app, ["models", "average", "--model", str(tmp_path / "adapted"), "--base",
                                   str(tiny_model_dir), "--output", str(output), *extra])

    for alpha in ("0", "0.25", "1"):
        result = average(tmp_path / f"avg_{alpha}", "--alpha", alpha)
        assert result.exit_code == 0, result.output
    adapted, base = read_weights(tmp_path / "adapted"), read_weights(tiny_model_dir)
    quarter = read_weights(tmp_path / "avg_0.25")
    assert all(torch.equal(read_weights(tmp_path / "avg_1")[k], adapted[k]) for k in adapted)
    assert all(torch.equal(read_weights(tmp_path / "avg_0")[k], base[k]) for k in base)
    moved = [k for k in adapted if not torch.equal(adapted[k], base[k])]
    assert moved
    for k in moved:
        expected = (0.25 * adapted[k].double() + 0.75 * base[k].double()).to(adapted[k].dtype)
        assert torch.equal(quarter[k], expected)
    # the averaged directory is a model of the adapted one's kind; α = 0 scores as the base does
    prompts, chosen, rejected = ["Is 40 even?"], ["yes"], ["no"]
    zero = load_reward_model(str(tmp_path / "avg_0"), dtype="fp32")
    assert type(zero) is type(load_reward_model(str(tmp_path / "adapted"), dtype="fp32"))
    assert zero.compare(prompts, chosen, rejected) == load_reward_model(str(tiny_model_dir), dtype="fp32").compare(
        prompts, chosen, rejected)
    report = json.loads((tmp_path / "avg_0.25" / "averaging.json").read_text())
    assert report["alpha"] == 0.25 and report["adapted"] == str(tmp_path / "adapted")
    # per-layer shares: layer 0 kept from the base, the rest the adapted model's
    assert average(tmp_path / "layered", "--alpha", "1", "--layer-alpha", r"layers\.0\.=0").exit_code == 0
    layered = read_weights(tmp_path / "layered")
    assert all(torch.equal(layered[k], base[k] if ".layers.0." in k else adapted[k]) for k in adapted if k in base)
    # refused, exit 2, nothing written or changed: an existing output, a bad share, a malformed pattern
    for output, extra, message in ((tmp_path / "avg_0", ["--alpha", "0.5"], "already exists"),
                                   (tmp_path / "bad", ["--alpha", "1.5"], "[0, 1]"),
                                   (tmp_path / "bad", ["--alpha", "0.5", "--layer-alpha", "layers"], "REGEX=ALPHA")):
        result = average(output, *extra)
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.*"))
    assert all(torch.equal(read_weights(tmp_path / "avg_0")[k], base[k]) for k in base)
    assert {p.name: p.read_bytes() for p in (tmp_path / "adapted").iterdir() if p.is_file()} == before
