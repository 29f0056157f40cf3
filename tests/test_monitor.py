"""The over-optimisation monitor: its metrics by hand, its thresholds and policies, the audited
rewards equal to the plain ones, and the monitor inside each adapter (TRL, verl, OpenRLHF's
Python-file reward and the server's /get_reward)."""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest

from rewardkit import load_reward_model
from rewardkit.errors import ConfigError
from rewardkit.scoring.monitor import (
    AuditedRow,
    MonitorThresholds,
    RewardHackingWarning,
    RewardMonitor,
    audited_rewards,
    verifier_disagreement,
)


@pytest.fixture(scope="module")
def judge(tiny_model_dir):
    return load_reward_model(str(tiny_model_dir), dtype="fp32")


def spearman_by_hand(x, y):
    def rank(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        out = [0.0] * len(v)
        for position, i in enumerate(order):
            out[i] = position + 1.0
        return out  # no ties in the data below

    rx, ry = rank(x), rank(y)
    n = len(x)
    return 1 - 6 * sum((a - b) ** 2 for a, b in zip(rx, ry)) / (n * (n * n - 1))


def test_metrics_by_hand_over_a_sliding_window():
    rng = random.Random(0)
    monitor = RewardMonitor(window=10, min_rows=4)
    rewards = [rng.uniform(-1, 1) for _ in range(14)]
    lengths = rng.sample(range(100, 400), 14)
    for start in (0, 7):  # two calls: the window then holds the latest 10 rows
        monitor.observe([AuditedRow(r) for r in rewards[start:start + 7]], lengths[start:start + 7])
    window_r, window_l = rewards[4:], lengths[4:]
    m = monitor.latest
    assert m["rewardkit/reward/mean"] == pytest.approx(sum(window_r) / 10)
    assert m["rewardkit/reward/std"] == pytest.approx(float(np.std(window_r)))
    assert m["rewardkit/length_spearman"] == pytest.approx(spearman_by_hand(window_r, window_l))
    assert "rewardkit/order_disagreement" not in m and "rewardkit/verifier_disagreement" not in m
    fixed = monitor.fixed_metrics()
    assert math.isnan(fixed["rewardkit/order_disagreement"]) and fixed["rewardkit/reward/mean"] == m["rewardkit/reward/mean"]


def test_order_and_verifier_disagreement_by_hand():
    rows = [AuditedRow(0.1, 0.7, 0.6), AuditedRow(0.0, 0.7, 0.3), AuditedRow(-0.2, 0.2, 0.4), AuditedRow(0.5, 0.4, 0.9)]
    monitor = RewardMonitor(window=8, min_rows=2)
    assert monitor.observe(rows, [1, 2, 3, 4])["rewardkit/order_disagreement"] == pytest.approx(2 / 4)
    # verified rows' model rewards 0.9, 0.2; refuted 0.5, 0.2: of 4 (good, bad) pairs 1 right, 1 tie, 2 wrong
    audited = [AuditedRow(5, passed=True, model_reward=0.9), AuditedRow(5, passed=True, model_reward=0.2),
               AuditedRow(-5, passed=False, model_reward=0.95), AuditedRow(-5, passed=False, model_reward=0.2),
               AuditedRow(0.3)]
    assert verifier_disagreement(audited) == pytest.approx(1 - (0 + 0.5 + 1 + 0) / 4)
    assert verifier_disagreement(audited[:2]) is None  # one kind only: undefined


def test_a_length_hacking_reward_trips_once_and_an_unrelated_one_does_not():
    rng = random.Random(1)
    lengths = [rng.randint(10, 500) for _ in range(96)]
    hacked = RewardMonitor(window=64, min_rows=32)
    clean = RewardMonitor(window=64, min_rows=32)
    with pytest.warns(RewardHackingWarning, match=r"length_spearman = 0\.9\d\d \(threshold 0\.5\)"):
        for start in range(0, 96, 8):
            part = lengths[start:start + 8]
            hacked.observe([AuditedRow(n / 100 + rng.gauss(0, 0.2)) for n in part], part)
    assert hacked.trips == 1 and hacked.tripped == ["length_spearman"]  # warned once, stays tripped
    assert hacked.latest["rewardkit/tripped"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RewardHackingWarning)
        for start in range(0, 96, 8):
            part = lengths[start:start + 8]
            clean.observe([AuditedRow(rng.gauss(0, 1)) for _ in part], part)
    assert clean.trips == 0 and abs(clean.latest["rewardkit/length_spearman"]) < 0.5


def test_nothing_trips_before_min_rows_even_at_a_perfect_correlation():
    monitor = RewardMonitor(window=64, min_rows=32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RewardHackingWarning)
        monitor.observe([AuditedRow(float(n)) for n in range(31)], list(range(31)))
    assert monitor.latest["rewardkit/length_spearman"] == pytest.approx(1.0) and monitor.trips == 0


@pytest.mark.parametrize("policy", ["warn", "clip", "hold"])
def test_policies_change_rewards_only_while_tripped(policy):
    monitor = RewardMonitor(window=40, min_rows=20, policy=policy)
    baseline = [float(i) for i in range(20)]  # the first 20 rewards, rising with length: trips
    with pytest.warns(RewardHackingWarning):
        monitor.observe([AuditedRow(r) for r in baseline], list(range(20)))
    out = monitor.apply([-100.0, 5.0, 100.0, None])
    if policy == "warn":
        assert out == [-100.0, 5.0, 100.0, None]
    elif policy == "clip":
        low, high = np.quantile(baseline, [0.05, 0.95])
        assert out[:3] == pytest.approx([low, 5.0, high]) and out[3] is None
    else:
        assert out[:3] == pytest.approx([9.5] * 3) and out[3] is None
    quiet = RewardMonitor(window=40, min_rows=20, policy=policy)
    quiet.observe([AuditedRow(r) for r in baseline], [7] * 20)  # constant length: no correlation
    assert quiet.apply([-100.0, 100.0]) == [-100.0, 100.0]


def test_calibration_drift_is_rescored_every_k_calls():
    shift = {"value": 0.0}
    scored = []

    def calibration():
        scored.append(shift["value"])
        return [1.0 + shift["value"], 2.0 - shift["value"]]

    monitor = RewardMonitor(window=8, min_rows=2, calibration=calibration, every=2)
    for call in range(5):
        shift["value"] = 0.1 * call
        metrics = monitor.observe([AuditedRow(0.0), AuditedRow(1.0)], [1, 2])
    assert scored == pytest.approx([0.0, 0.2, 0.4])  # calls 1, 3 and 5
    assert metrics["rewardkit/calibration_drift"] == pytest.approx(0.4)


def test_bad_monitor_settings_are_refused():
    with pytest.raises(ConfigError, match="policy must be one of warn, clip, hold"):
        RewardMonitor(policy="stop")
    with pytest.raises(ConfigError, match="min_rows"):
        RewardMonitor(window=8, min_rows=9)
    with pytest.raises(ConfigError, match="length_spearman"):
        MonitorThresholds(length_spearman=-1)


QUESTIONS = ["What is 2 + 2?", "What is half of 1?", "Say something nice.", "What is 3 * 3?"]
ANSWERS = ["It is 4.", "That is 0.75.", "You are great.", "The answer is $9$."]
REFERENCES = ["4", "0.5", "Have a nice day.", "9"]


def test_audited_rewards_are_the_plain_rewards_with_the_orders_beside_them(judge):
    rows = audited_rewards(judge, QUESTIONS, ANSWERS, REFERENCES)
    assert [r.reward for r in rows] == pytest.approx(judge.reward(QUESTIONS, ANSWERS, REFERENCES), abs=1e-9)
    details = judge.compare_details(QUESTIONS, ANSWERS, REFERENCES)
    assert [r.p_ab for r in rows] == pytest.approx([d.p_ab for d in details], abs=1e-6)
    assert [r.p_ba for r in rows] == pytest.approx([d.p_ba for d in details], abs=1e-6)
    from rewardkit.scoring.composite import CompositeReward

    composite = CompositeReward(judge, "math")
    audited = audited_rewards(composite, QUESTIONS, ANSWERS, REFERENCES)
    assert [r.reward for r in audited] == pytest.approx(composite.reward(QUESTIONS, ANSWERS, REFERENCES))
    assert [r.passed for r in audited] == [True, False, None, True]
    assert [r.model_reward for r in audited] == pytest.approx(judge.reward(QUESTIONS, ANSWERS, REFERENCES), abs=1e-9)


def test_the_monitor_in_the_trl_verl_and_openrlhf_adapters(judge):
    from rewardkit.integrations import verl
    from rewardkit.integrations.openrlhf import score_queries
    from rewardkit.integrations.trl import JudgeRewardFunction

    want = judge.reward(QUESTIONS, ANSWERS, REFERENCES)
    logged = {}
    monitor = RewardMonitor(window=8, min_rows=2)
    extra = {}
    rewards = JudgeRewardFunction(judge, monitor=monitor)(QUESTIONS, ANSWERS, reference=REFERENCES,
                                                          log_metric=lambda k, v: logged.setdefault(k, v),
                                                          log_extra=lambda k, v: extra.setdefault(k, v))
    assert rewards == pytest.approx(want, abs=1e-9)
    assert extra["rewardkit_reference_raw"] == pytest.approx(want, abs=1e-9)
    assert extra["rewardkit_reference_verdict"] == [None] * 4  # no verifier here
    from rewardkit.scoring.composite import CompositeReward

    composite, columns, composite_metrics = CompositeReward(judge, "math"), {}, {}
    JudgeRewardFunction(composite, monitor=RewardMonitor(window=8, min_rows=2))(
        QUESTIONS, ANSWERS, reference=REFERENCES, log_metric=lambda k, v: composite_metrics.setdefault(k, v),
        log_extra=lambda k, v: columns.setdefault(k, v))
    assert columns["rewardkit_reference_verdict"] == [True, False, None, True]
    model = judge.reward(QUESTIONS, ANSWERS, REFERENCES)  # the judge's own view of the verified and refuted rows
    assert composite_metrics["rewardkit/verifier_disagreement"] == pytest.approx(
        verifier_disagreement([AuditedRow(0, passed=v, model_reward=m) for v, m in zip([True, False, None, True], model)]))
    assert logged["rewardkit/reward/mean"] == pytest.approx(sum(want) / 4)
    assert "rewardkit/order_disagreement" in logged and monitor.calls == 1

    monitor = RewardMonitor(window=8, min_rows=2)
    out = verl.compute_score_batch([None] * 4, ANSWERS, REFERENCES, [{"question": q} for q in QUESTIONS],
                                   scorer=judge, monitor=monitor)
    assert [o["score"] for o in out] == pytest.approx(want, abs=1e-9)
    assert out[0]["rewardkit/reward/mean"] == pytest.approx(sum(want) / 4)
    assert len({frozenset(o) for o in out}) == 1  # every sample carries the same keys (verl needs it)

    monitor = RewardMonitor(window=8, min_rows=2)
    queries = [f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>" for q, a in zip(QUESTIONS, ANSWERS)]
    prompts = [f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS]
    result = score_queries(judge, queries, prompts, REFERENCES, monitor=monitor)
    plain = score_queries(judge, queries, prompts, REFERENCES)
    assert result["rewards"] == pytest.approx(plain["rewards"], abs=1e-9)
    assert result["extra_logs"]["rewardkit/reward/mean"] == pytest.approx([sum(plain["rewards"]) / 4] * 4)


def test_the_servers_get_reward_under_monitor(judge):
    from fastapi.testclient import TestClient

    from rewardkit.serve.app import ServeSettings, create_app

    queries = [f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>" for q, a in zip(QUESTIONS, ANSWERS)]
    prompts = [f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS]
    body = {"query": queries, "prompts": prompts, "labels": REFERENCES}
    with TestClient(create_app(judge)) as client:
        plain = client.post("/get_reward", json=body).json()
    never = MonitorThresholds(2.0, 2.0, 2.0, 2.0)  # no metric can pass these
    monitor = RewardMonitor(window=8, min_rows=2, policy="hold", thresholds=never)
    with TestClient(create_app(judge, ServeSettings(monitor=monitor))) as client:
        watched = client.post("/get_reward", json=body).json()
    assert watched["rewards"] == pytest.approx(plain["rewards"], abs=1e-6)  # nothing tripped: unchanged
    assert watched["extra_logs"]["p_better_than_reference"] == pytest.approx(plain["extra_logs"]["p_better_than_reference"],
                                                                             abs=1e-6)
    logs = watched["extra_logs"]
    assert logs["rewardkit/order_disagreement"][0] == monitor.latest["rewardkit/order_disagreement"]
    assert len(logs["rewardkit/tripped"]) == 4 and logs["rewardkit/tripped"][0] == 0.0
    always = MonitorThresholds(0.0, 0.0, 0.0, 0.0)
    with TestClient(create_app(judge, ServeSettings(monitor=RewardMonitor(window=8, min_rows=2, policy="hold",
                                                                          thresholds=always)))) as client:
        with pytest.warns(RewardHackingWarning):
            held = client.post("/get_reward", json=body).json()
    baseline = sum(plain["rewards"][:2]) / 2  # the mean of the first min_rows rewards
    assert held["rewards"] == pytest.approx([baseline] * 4, abs=1e-6)
    assert held["extra_logs"]["rewardkit/tripped"] == [1.0] * 4


def test_serve_refuses_a_bad_monitor_policy_before_loading(tmp_path):
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    result = CliRunner().invoke(app, ["serve", "--model", str(tmp_path / "nowhere"), "--monitor", "stop"])
    assert result.exit_code != 0 and "policy must be one of warn, clip, hold" in result.output
