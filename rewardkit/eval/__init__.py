"""Evaluation: metrics, RewardBench sections, runner and reports."""

from rewardkit.eval.report import write_report
from rewardkit.eval.runner import evaluate_files, evaluate_ratings, evaluate_sets, score_pairs, summarise

__all__ = ["evaluate_files", "evaluate_ratings", "evaluate_sets", "score_pairs", "summarise", "write_report"]
