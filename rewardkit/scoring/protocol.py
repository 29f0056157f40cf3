"""What every reward model offers its users: the `RewardModel` protocol.

Ranking, evaluation, the server and the RL adapters speak only this protocol; they never ask
which method trained a model. A method's scorer implements it (a pairwise judge in
`methods/judge/scorer.py`; any model with a scalar per response through `PointwiseScorer`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence, runtime_checkable

from rewardkit.deprecation import REMOVED_IN
from rewardkit.errors import RewardKitError
from rewardkit.types import Prompt, prompt_to_text

REWARD_SCALES = ("logodds", "prob")


@dataclass(frozen=True)
class Comparison:
    """One pair's result: p_ab is P(a better) with a shown first, p_ba with b shown first."""

    probability: float  # P(a better than b), both orders averaged (or the one order used)
    p_ab: float | None
    p_ba: float | None

    @property
    def consistent(self) -> bool | None:
        if self.p_ab is None or self.p_ba is None:
            return None
        return (self.p_ab > 0.5) == (self.p_ba > 0.5)


@dataclass(frozen=True)
class RankResult:
    """One prompt's responses ranked by a reward model (`RewardModel.rank`)."""

    order: list[int]  # indices of the responses, best first
    scores: list[float]  # one per response (meaning depends on the strategy; higher is better)
    strategy: str
    comparisons: int  # pairwise judgements made (each in both orders)

    @property
    def best(self) -> int:
        return self.order[0]


@dataclass(frozen=True)
class ScorerOptions:
    """How to load and run a saved model for scoring (what `load_reward_model` takes)."""

    dtype: object = None  # "auto" / None: bf16 where native, else fp32; or "fp32", "bf16", a torch dtype
    device: str | None = None
    max_batch_tokens: int = 8192
    use_prefix_cache: bool = True
    max_length: int | None = None  # None: the model's own position limit, never the training cap
    trust_remote_code: bool = False
    backend: str = "eager"  # the decoder pass: eager, onnx, openvino, … or auto (models/backends.py)
    # LoRA adapters merged into the weights (fastest), or kept apart: W·x + B(A·x) as training
    # computed it, which load_reward_model asks for when the model scores under autocast
    merge_adapters: bool = True


@runtime_checkable
class RewardModel(Protocol):
    kind: str  # what rewardkit.json says the model is ("generative_judge", "bradley_terry", …)
    pointwise: bool  # True: reward() needs no reference (a scalar per response)

    def compare(self, prompts: Sequence[Prompt], responses_a: Sequence[str], responses_b: Sequence[str],
                both_orders: bool = True) -> list[float]:
        """P(responses_a[i] is better than responses_b[i])."""

    def compare_details(self, prompts: Sequence[Prompt], responses_a: Sequence[str], responses_b: Sequence[str],
                        both_orders: bool = True) -> list[Comparison]:
        """`compare` with the probability of each presentation order."""

    def compare_to_references(self, prompts: Sequence[Prompt], responses: Sequence[str],
                              references: Sequence[str]) -> list[float]:
        """P(response better than its reference)."""

    def reward(self, prompts: Sequence[Prompt], responses: Sequence[str], references=None,
               scale: str = "logodds") -> list[float]:
        """One number per response, higher is better (see each scorer for its scale)."""

    def rank(self, prompt: Prompt, responses: Sequence[str], strategy: str = "knockout",
             reference: str | None = None) -> RankResult:
        """The responses of one prompt, best first."""


def to_scale(p: float, scale: str) -> float:
    """A probability on the documented reward scale: log-odds (clipped to ±log 1e6) or p itself."""
    if scale not in REWARD_SCALES:
        raise RewardKitError(f"scale must be one of {REWARD_SCALES}, got {scale!r}")
    if scale == "prob":
        return p
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def compare_result(details: list[Comparison], return_details: bool):
    """What `compare` returns: the probabilities, or — for callers of older versions that pass
    `return_details=True` — the details themselves, with a warning (use `compare_details`)."""
    if return_details:
        warnings.warn("compare(..., return_details=True) is deprecated: use compare_details(); the argument is removed "
                      f"in rewardkit {REMOVED_IN}", DeprecationWarning, stacklevel=3)
        return details
    return [d.probability for d in details]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def resolve_references(prompts, references) -> list[str]:
    """One reference per prompt, from a list or a {prompt text: reference} mapping."""
    if references is None:
        raise RewardKitError("a pairwise judge scores a response against a reference: pass references= "
                             "(one per response, or a {prompt: reference} mapping), or use rank()")
    if isinstance(references, Mapping):
        missing = [prompt_to_text(p) for p in prompts if prompt_to_text(p) not in references]
        if missing:
            raise RewardKitError(f"no reference for prompt {missing[0][:80]!r} ({len(missing)} prompts without one)")
        return [references[prompt_to_text(p)] for p in prompts]
    same_length(prompts=prompts, references=references)
    return list(references)


def same_length(**lists) -> None:
    lengths = {name: len(values) for name, values in lists.items()}
    if len(set(lengths.values())) > 1:
        raise RewardKitError(f"inputs must have the same length, got {lengths}")
