"""Scoring: the engine (token batches → scores), the RewardModel protocol every scorer offers,
and the pointwise base for scalar models. The scorers themselves belong to their methods
(`rewardkit.methods.*`); the names below are kept here for callers of older versions."""

from rewardkit.scoring.engine import ScoreRequest, ScoringEngine
from rewardkit.scoring.pointwise import PointwiseScorer
from rewardkit.scoring.protocol import Comparison, RewardModel, ScorerOptions

_MOVED = {"PairwiseJudge": "rewardkit.methods.judge", "BradleyTerryScorer": "rewardkit.methods.bradley_terry",
          "load_reward_model": "rewardkit.methods.load"}


def __getattr__(name: str):
    if name in _MOVED:  # imported lazily: the methods themselves import this package
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'rewardkit.scoring' has no attribute {name!r}")


__all__ = ["BradleyTerryScorer", "Comparison", "PairwiseJudge", "PointwiseScorer", "RewardModel", "ScoreRequest",
           "ScorerOptions", "ScoringEngine", "load_reward_model"]
