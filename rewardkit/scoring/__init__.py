"""Scoring: the engine (token batches → scores), the RewardModel protocol every scorer offers,
and the pointwise base for scalar models. The scorers themselves belong to their methods
(`rewardkit.methods.*`); `load_reward_model` is `rewardkit.load_reward_model`."""

from rewardkit.deprecation import moved
from rewardkit.scoring.engine import ScoreRequest, ScoringEngine
from rewardkit.scoring.pointwise import PointwiseScorer
from rewardkit.scoring.protocol import Comparison, RankResult, RewardModel, ScorerOptions

# forwarding addresses of names that lived here (see rewardkit/deprecation.py)
_MOVED = {"PairwiseJudge": "rewardkit.methods.judge", "BradleyTerryScorer": "rewardkit.methods.bradley_terry",
          "load_reward_model": "rewardkit.methods.load"}


def __getattr__(name: str):
    return moved(__name__, _MOVED, name)


__all__ = ["Comparison", "PointwiseScorer", "RankResult", "RewardModel", "ScoreRequest", "ScorerOptions", "ScoringEngine"]
