"""rewardkit: build, evaluate and serve reward models for LLM alignment.

    import rewardkit as rk
    rm = rk.load_reward_model("runs/judge")
    rk.train_method("bradley_terry", rk.LoopConfig(model="smollm2-135m", data=rows, output="runs/bt"))

Everything a user needs is a name here, imported on first use (so `import rewardkit` stays
fast and loads no model library): see `__all__`. The modules behind each name are where the
docs (docs/layout.md) place them.
"""

from __future__ import annotations

import importlib

from rewardkit.types import Message, PreferencePair, ResponsePair

__version__ = "0.1.0"

# public name → the module that defines it
_PUBLIC = {
    # models and scoring
    "load_reward_model": "rewardkit.methods.load",
    "RewardModel": "rewardkit.scoring.protocol",
    "Comparison": "rewardkit.scoring.protocol",
    "ScorerOptions": "rewardkit.scoring.protocol",
    "PointwiseScorer": "rewardkit.scoring.pointwise",
    "CompositeReward": "rewardkit.scoring.composite",
    "RewardMonitor": "rewardkit.scoring.monitor",
    "MonitorThresholds": "rewardkit.scoring.monitor",
    "Precision": "rewardkit.models.precision",
    # training and the method seam
    "train_method": "rewardkit.methods.train",
    "LoopConfig": "rewardkit.training.loop_config",
    "register_method": "rewardkit.methods",
    "get_method": "rewardkit.methods",
    "method_names": "rewardkit.methods",
    "MethodSpec": "rewardkit.methods.base",
    "TrainingTask": "rewardkit.methods.base",
    # each method's options
    "PretrainConfig": "rewardkit.methods.pretrain.config",
    "JudgeConfig": "rewardkit.methods.judge.config",
    "BradleyTerryConfig": "rewardkit.methods.bradley_terry.config",
    "MultiObjectiveConfig": "rewardkit.methods.multi_objective.config",
    "PreferenceReprConfig": "rewardkit.methods.preference_repr.config",
    # recipes
    "SelfTrainConfig": "rewardkit.recipes.self_training",
    "self_train": "rewardkit.recipes.self_training",
    "DistillConfig": "rewardkit.recipes.distill",
    "distill": "rewardkit.recipes.distill",
    "AdaptConfig": "rewardkit.recipes.adapt",
    "adapt": "rewardkit.recipes.adapt",
    # data
    "load_pairs": "rewardkit.data",
    "load_response_pairs": "rewardkit.data",
    # ranking and evaluation
    "rank_responses": "rewardkit.ranking.strategies",
    "RankResult": "rewardkit.ranking.strategies",
    "evaluate_files": "rewardkit.eval",
    "evaluate_ratings": "rewardkit.eval",
    # serving
    "create_app": "rewardkit.serve.app",
    "ServeSettings": "rewardkit.serve.app",
}


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'rewardkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))


__all__ = ["Message", "PreferencePair", "ResponsePair", "__version__", *_PUBLIC]
