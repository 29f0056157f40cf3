"""The real TRL GRPOTrainer (1.16) for two steps on a tiny policy, with rewardkit's reward
function in both modes, on standard and conversational data."""

from __future__ import annotations

import math

import pytest

trl = pytest.importorskip("trl")


@pytest.mark.parametrize("conversational", [False, True])
def test_grpo_trainer_runs_with_both_adapter_modes(tmp_path, tiny_model_dir, judge_fp32, conversational):
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.integrations import JudgeRewardFunction

    calls = []

    class Recording(JudgeRewardFunction):
        def __call__(self, prompts, completions, **columns):
            rewards = super().__call__(prompts, completions, **columns)
            calls.append((self.mode, sorted(columns), prompts, rewards))
            return rewards

    def prompt(i):
        text = f"question {i}?"
        return [{"role": "user", "content": text}] if conversational else text

    data = datasets.Dataset.from_list([{"prompt": prompt(i), "reference": "good answer"} for i in range(8)])
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=6, max_steps=2, report_to=[], logging_steps=1, use_cpu=True,
                      save_strategy="no", bf16=False)
    trainer = GRPOTrainer(model=str(tiny_model_dir), args=args, train_dataset=data,
                          reward_funcs=[Recording(judge_fp32, mode="reference"), Recording(judge_fp32, mode="round_robin")])
    trainer.train()
    logged = [h for h in trainer.state.log_history if "rewards/rewardkit_reference/mean" in h]
    assert len(logged) == 2
    for entry in logged:
        for key in ("rewards/rewardkit_reference/mean", "rewards/rewardkit_round_robin/std"):
            assert math.isfinite(entry[key])
    modes = {mode for mode, *_ in calls}
    assert modes == {"reference", "round_robin"}
    for mode, columns, prompts, rewards in calls:
        assert {"trainer_state", "log_extra", "log_metric", "reference"} <= set(columns)  # TRL passes all of these
        assert len(rewards) == len(prompts) and all(r is not None and math.isfinite(r) for r in rewards)
        if mode == "round_robin":  # each prompt's two completions were compared with each other
            assert any(abs(r) > 0 for r in rewards)


@pytest.fixture(scope="module")
def judge_fp32(tiny_model_dir):
    from rewardkit import load_reward_model

    return load_reward_model(tiny_model_dir, dtype="fp32")


class _Planted:
    """Pointwise rewards planted for the monitor: one that grows with the completion's length
    (a reward a policy can hack by writing more), one unrelated to it (a hash of the text)."""

    @staticmethod
    def scorer(length_hacking: bool):
        import hashlib

        from rewardkit.scoring.pointwise import PointwiseScorer

        class Planted(PointwiseScorer):
            kind = "bradley_terry"

            def score(self, prompts, responses):
                if length_hacking:
                    return [len(r) / 10 for r in responses]
                return [int(hashlib.sha256(r.encode()).hexdigest()[:8], 16) / 2**32 for r in responses]

        return Planted()


@pytest.mark.parametrize("length_hacking", [True, False])
def test_the_monitor_inside_a_real_grpo_run_trips_on_a_length_hacking_reward_only(tmp_path, tiny_model_dir,
                                                                                    length_hacking):
    import warnings

    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.integrations import JudgeRewardFunction
    from rewardkit.scoring.monitor import RewardHackingWarning, RewardMonitor

    monitor = RewardMonitor(window=128, min_rows=64)
    reward = JudgeRewardFunction(_Planted.scorer(length_hacking), monitor=monitor, name="planted")
    data = datasets.Dataset.from_list([{"prompt": f"question {i}?", "reference": ""} for i in range(16)])
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=8, max_steps=16, report_to=[], logging_steps=1, use_cpu=True,
                      save_strategy="no", bf16=False, seed=0)
    trainer = GRPOTrainer(model=str(tiny_model_dir), args=args, train_dataset=data, reward_funcs=[reward])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RewardHackingWarning)
        trainer.train()
    logged = [h for h in trainer.state.log_history if "rewardkit/length_spearman" in h]
    assert len(logged) == 16  # TRL logged the monitor's metrics at every step, beside its own
    assert all(math.isfinite(h["rewardkit/reward/std"]) for h in logged)
    trips = [w for w in caught if issubclass(w.category, RewardHackingWarning)]
    if length_hacking:
        assert monitor.trips == 1 and len(trips) == 1 and "length_spearman" in str(trips[0].message)
        assert logged[-1]["rewardkit/length_spearman"] > 0.9 and logged[-1]["rewardkit/tripped"] == 1.0
    else:
        assert monitor.trips == 0 and not trips
        assert abs(logged[-1]["rewardkit/length_spearman"]) < 0.5  # a hash of the text: no length habit (-0.18 here)
        assert all(h["rewardkit/tripped"] == 0.0 for h in logged)
