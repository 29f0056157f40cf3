"""`rewardkit parity` on a tiny model of every method: every path that applies scores the golden
rows within tolerance of the reference; a planted mismatch makes it fail, naming the path."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from rewardkit import LoopConfig, train_method
from rewardkit.cli.main import app

GOOD = ["good answer", "correct and helpful", "yes sure good", "good good"]
BAD = ["bad wrong", "sorry cannot", "harmful bad", "wrong no"]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_model_dir):
    """A tiny trained model of every method, and golden rows none of them trained on."""
    from rewardkit.methods import get_method
    from rewardkit.methods.bradley_terry import BradleyTerryConfig
    from rewardkit.methods.judge import JudgeConfig

    root = tmp_path_factory.mktemp("parity")
    rng = random.Random(0)
    train = write(root / "train.jsonl", [{"prompt": f"question {i}?", "chosen": rng.choice(GOOD) + " yes" * (i % 3),
                                          "rejected": rng.choice(BAD) + " no" * (i % 2)} for i in range(16)])
    golden = write(root / "golden.jsonl", [{"prompt": f"a new question {i}?", "chosen": rng.choice(GOOD),
                                            "rejected": rng.choice(BAD) + " no" * (i % 4)} for i in range(10)])

    def loop(name, **kw):
        settings = dict(model=str(tiny_model_dir), data=[str(train)], output=str(root / name), max_steps=4,
                        batch_size=4, save_every=10**6, mixed_precision="no", lr=1e-2)
        return LoopConfig(**{**settings, **kw})

    train_method("judge", loop("judge"), JudgeConfig())
    train_method("bradley_terry", loop("bt"), BradleyTerryConfig())
    ratings = [{"prompt": f"q{i}", "response": " ".join(rng.choice(GOOD + BAD) for _ in range(3)), "scale": [0, 4],
                "attributes": {"helpfulness": i % 5, "verbosity": (i * 3) % 5}} for i in range(24)]
    multi = get_method("multi_objective")
    train_method(multi, loop("multi", data=[]), multi.Config(ratings=[str(write(root / "r.jsonl", ratings))],
                                                              pairs=[str(train)], gate_steps=10))
    train_method("preference_repr", loop("repr", max_steps=10))
    pool = write(root / "pool.jsonl", [{"prompt": f"question {i}?", "response_a": rng.choice(GOOD),
                                        "response_b": rng.choice(BAD)} for i in range(8)])
    train_method("pretrain", loop("pretrain", data=[str(pool)]))  # GRAM stage 1: scored as a zero-shot judge
    return root, golden


def parity(*args):
    return CliRunner().invoke(app, ["parity", *map(str, args)], env={"COLUMNS": "250"})


@pytest.mark.parametrize("name, training_forward", [("judge", True), ("bt", True), ("multi", False), ("repr", False),
                                                    ("pretrain", False)])
def test_parity_holds_on_every_path_for_every_method(models, name, training_forward):
    root, golden = models
    report_file = root / f"{name}-parity.json"
    backends = ["--backend", "onnx"] if name in ("judge", "bt") else ["--backend", "eager"]
    result = parity(root / name, "--data", golden, "--output", report_file, *backends)
    assert result.exit_code == 0, result.output
    report = json.loads(report_file.read_text())
    assert report["passed"] and report["rows"] == 10
    paths = report["paths"]
    ran = [n for n, e in paths.items() if "skipped" not in e]
    assert {"reload, batch 1", "reload, batch 32", "server"} <= set(ran)
    assert ("training forward" in ran) == training_forward
    plain = {"transformers, right padding", "transformers, left padding"}
    assert plain <= set(ran) if name in ("judge", "bt", "pretrain") else not plain & set(ran)
    for entry in (paths[n] for n in ran):
        assert entry["max_abs_delta"] <= 1e-4 and entry["passed"] and entry["accuracy_change"] == 0.0
    assert "not applicable" in result.output and "parity holds on every path" in result.output


def test_parity_fails_on_a_planted_mismatch_and_names_the_path(models, tmp_path):
    """The saved manifest says the judge trained on rows of 300 tokens: the training-time forward
    then cuts the long golden answers, and no other path does (scoring keeps whole rows)."""
    import shutil

    root, _ = models
    golden = write(tmp_path / "long.jsonl", [{"prompt": f"a long question {i}?", "chosen": "good answer " * (10 + i),
                                              "rejected": "bad wrong " * (12 + i)} for i in range(6)])
    planted = tmp_path / "judge"
    shutil.copytree(root / "judge", planted)
    manifest = json.loads((planted / "rewardkit.json").read_text())
    (planted / "rewardkit.json").write_text(json.dumps({**manifest, "max_length": 300}))
    result = parity(planted, "--data", golden, "--output", tmp_path / "report.json", "--backend", "eager")
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert not report["passed"] and report["paths"]["training forward"]["passed"] is False
    assert report["paths"]["reload, batch 1"]["passed"] and report["paths"]["server"]["passed"]
    assert "parity failed: training forward" in result.output
