"""Reward normalisation: the mean and std of a reward model's rewards on a calibration file,
so that rewards can be served z-normalised (RL loops like rewards near N(0, 1))."""

from __future__ import annotations

import statistics

from rewardkit.data.readers import iter_objects
from rewardkit.data.references import row_prompt
from rewardkit.errors import DataError
from rewardkit.scoring.protocol import to_scale


def calibrate(scorer, path: str, *, limit: int = 512) -> tuple[float, float]:
    """(mean, std) of the scorer's rewards over JSONL rows {prompt, response, reference?}; a
    model that is not pointwise needs the reference of each row."""
    prompts, responses, references = [], [], []
    for number, row in iter_objects(path):
        if not isinstance(row.get("response"), str):
            raise DataError(path, number, "response", "is missing or not text")
        if not scorer.pointwise and not isinstance(row.get("reference"), str):
            raise DataError(path, number, "reference", "a judge needs a reference answer per calibration row")
        prompts.append(row_prompt(path, number, row))
        responses.append(row["response"])
        references.append(row.get("reference"))
        if len(prompts) >= limit:
            break
    if len(prompts) < 2:
        raise DataError(path, None, None, "a calibration file needs at least 2 rows")
    if scorer.pointwise:
        values = scorer.reward(prompts, responses)
    else:
        values = [to_scale(p, "logodds") for p in scorer.compare_to_references(prompts, responses, references)]
    std = statistics.pstdev(values)
    return statistics.fmean(values), std if std > 1e-6 else 1.0


def normalize(rewards: list[float], normalization: tuple[float, float] | None) -> list[float]:
    """z-normalised rewards; unchanged without a normalisation."""
    if not normalization:
        return list(rewards)
    mean, std = normalization
    return [(r - mean) / std for r in rewards]
