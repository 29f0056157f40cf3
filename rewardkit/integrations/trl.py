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

import warnings
from typing import Any, Sequence

from rewardkit.errors import RewardKitError
from rewardkit.types import FieldProblem, Prompt, message_from_dict, prompt_from_json, prompt_to_text

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

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> list[float | None]:
        """One reward per completion; None where none can be given (TRL turns it into NaN and
        leaves the row out of its reward statistics)."""
        if len(prompts) != len(completions):
            raise RewardKitError(f"got {len(prompts)} prompts for {len(completions)} completions")
        questions = [_prompt(p, i) for i, p in enumerate(prompts)]
        answers = [_completion(c, i) for i, c in enumerate(completions)]
        if self.mode == "reference":
            return self._reference(questions, answers, columns.get(self.reference_column))
        return self._round_robin(questions, answers)

    def _reference(self, questions, answers, references) -> list[float | None]:
        if references is None:
            raise RewardKitError(f"mode 'reference' needs a dataset column '{self.reference_column}' with a "
                                 "reference answer per prompt (or use mode='round_robin')")
        refs = [None if r is None else _completion(r, i, self.reference_column) for i, r in enumerate(references)]
        rows = [i for i, r in enumerate(refs) if r is not None]
        if len(rows) < len(refs):
            warnings.warn(f"rewardkit: {len(refs) - len(rows)} row(s) have no reference answer; their reward is None",
                          stacklevel=2)
        rewards: list[float | None] = [None] * len(answers)
        if rows:
            scores = self.scorer.reward([questions[i] for i in rows], [answers[i] for i in rows], [refs[i] for i in rows])
            for i, score in zip(rows, scores):
                rewards[i] = float(score)
        return rewards

    def _round_robin(self, questions, answers) -> list[float | None]:
        """Completions are grouped by prompt wherever they are in the batch (Online DPO
        interleaves prompts; a GRPO group may be split over ranks); a prompt with one
        completion here has nothing to be compared with: None, with a warning."""
        groups: dict[str, list[int]] = {}
        for index, question in enumerate(questions):
            groups.setdefault(prompt_to_text(question), []).append(index)
        rewards: list[float | None] = [None] * len(answers)
        alone = 0
        for members in groups.values():
            if len(members) == 1:
                alone += 1
                continue
            result = self.scorer.rank(questions[members[0]], [answers[i] for i in members], strategy="round_robin")
            for i, score in zip(members, result.scores):
                rewards[i] = float(score)
        if alone:
            warnings.warn(f"rewardkit round_robin: {alone} prompt(s) have a single completion in this call (e.g. one "
                          "completion per rank); their reward is None. Use mode='reference', or keep a prompt's "
                          "completions on one process", stacklevel=2)
        return rewards
