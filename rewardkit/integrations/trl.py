"""A reward function for TRL's GRPOTrainer (and other trainers taking `reward_funcs`).

TRL calls `fn(prompts=..., completions=..., **columns)` with one entry per completion (the
completions of one prompt consecutively, `num_generations` of them) and expects one float
each. Prompts and completions are strings (standard) or message lists (conversational).

Modes:
  reference    reward = log-odds that the completion beats the row's reference answer
               (dataset column `reference_column`), 0 = as good as the reference.
  round_robin  every completion of a prompt against every other, aggregated with
               Bradley–Terry into a score per completion (centred within the group), no
               reference needed; GRPO's per-group advantage normalisation fits it exactly.
"""

from __future__ import annotations

from typing import Any, Sequence

from rewardkit.errors import RewardKitError
from rewardkit.types import FieldProblem, Prompt, message_from_dict, prompt_from_json

MODES = ("reference", "round_robin")


def _prompt(value: Any, index: int) -> Prompt:
    try:
        return prompt_from_json(value, f"prompts[{index}]")
    except FieldProblem as exc:
        raise RewardKitError(f"{exc.field}: {exc}") from None


def _completion(value: Any, index: int, what: str = "completions") -> str:
    if isinstance(value, str):
        return value
    # conversational: a list of messages, the generated assistant turn(s)
    try:
        messages = [message_from_dict(m, f"{what}[{index}][{i}]") for i, m in enumerate(value)]
    except FieldProblem as exc:
        raise RewardKitError(f"{exc.field}: {exc}") from None
    return "".join(m.content for m in messages if m.role == "assistant")


class JudgeRewardFunction:
    """`JudgeRewardFunction(scorer)` where scorer is `load_reward_model(...)` or `RemoteScorer(url)`."""

    def __init__(self, scorer, mode: str = "reference", reference_column: str = "reference", name: str | None = None):
        if mode not in MODES:
            raise RewardKitError(f"mode must be one of {MODES}, got {mode!r}")
        self.scorer, self.mode, self.reference_column = scorer, mode, reference_column
        self.__name__ = name or f"rewardkit_{mode}"  # TRL logs each reward function under its __name__

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> list[float]:
        if len(prompts) != len(completions):
            raise RewardKitError(f"got {len(prompts)} prompts for {len(completions)} completions")
        questions = [_prompt(p, i) for i, p in enumerate(prompts)]
        answers = [_completion(c, i) for i, c in enumerate(completions)]
        if self.mode == "reference":
            references = columns.get(self.reference_column)
            if references is None:
                raise RewardKitError(f"mode 'reference' needs a dataset column '{self.reference_column}' with a "
                                     "reference answer per prompt (or use mode='round_robin')")
            return self.scorer.reward(questions, answers, [_completion(r, i, self.reference_column) for i, r in enumerate(references)])
        return self._round_robin(questions, answers)

    def _round_robin(self, questions, answers) -> list[float]:
        rewards: list[float] = []
        start = 0
        while start < len(answers):  # consecutive completions of the same prompt form a group
            end = start + 1
            while end < len(answers) and questions[end] == questions[start]:
                end += 1
            if end - start == 1:
                rewards.append(0.0)
            else:
                result = self.scorer.rank(questions[start], answers[start:end], strategy="round_robin")
                rewards.extend(float(s) for s in result.scores)
            start = end
        return rewards
