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
               A pointwise model (Bradley–Terry) scores each completion alone, centred
               the same way. Under multi-process training TRL spreads one prompt's group
               over the ranks; the ranks then share their completions first, so every
               completion is ranked within its whole group, as in one process.

References: a column's text as it is; a number (a math answer, 3.5) as its text; None or
blank text means "no reference" — a pointwise model needs none, a judge gives that row None
(TRL turns it into NaN and leaves the row out), with a warning. The same rule holds for
OpenRLHF labels and verl's ground truth (docs/serving.md).
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


def _reference_text(value: Any, index: int, column: str) -> str | None:
    """A reference cell as text, or None for "no reference" (None, blank text)."""
    from rewardkit.serve.queries import QueryError, label_reference

    if value is None or isinstance(value, (str, int, float)):
        try:
            return label_reference(value)
        except QueryError as exc:
            raise RewardKitError(f"{column}[{index}]: {exc}") from None
    text = _completion(value, index, column)  # a message list
    return text if text.strip() else None


def _completion(value: Any, index: int, what: str = "completions") -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, (list, tuple)):
        raise RewardKitError(f"{what}[{index}]: expected text or a list of messages, got {type(value).__name__}")
    # conversational: a list of messages, the generated assistant turn(s)
    try:
        messages = [message_from_dict(m, f"{what}[{index}][{i}]") for i, m in enumerate(value)]
    except FieldProblem as exc:
        raise RewardKitError(f"{exc.field}: {exc}") from None
    return "".join(m.content for m in messages if m.role == "assistant")


class JudgeRewardFunction:
    """`JudgeRewardFunction(scorer)` where scorer is `load_reward_model(...)` or `RemoteScorer(url)`."""

    def __init__(self, scorer, mode: str = "reference", reference_column: str = "reference", name: str | None = None,
                 monitor=None):
        """`monitor`: a `RewardMonitor` (scoring/monitor.py) that watches every call's rewards,
        logs its metrics through TRL's `log_metric` and applies its policy (warn | clip | hold)."""
        if mode not in MODES:
            raise RewardKitError(f"mode must be one of {MODES}, got {mode!r}")
        self.scorer, self.mode, self.reference_column, self.monitor = scorer, mode, reference_column, monitor
        self.__name__ = name or f"rewardkit_{mode}"  # TRL logs each reward function under its __name__
        self._audit: dict[int, Any] = {}  # row index → AuditedRow of the latest call (monitor only)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> list[float | None]:
        """One reward per completion; None where none can be given (TRL turns it into NaN and
        leaves the row out of its reward statistics)."""
        if len(prompts) != len(completions):
            raise RewardKitError(f"got {len(prompts)} prompts for {len(completions)} completions")
        questions = [_prompt(p, i) for i, p in enumerate(prompts)]
        answers = [_completion(c, i) for i, c in enumerate(completions)]
        self._audit = {}
        if self.mode == "reference":
            rewards = self._reference(questions, answers, columns.get(self.reference_column))
        else:
            rewards = self._round_robin(questions, answers)
        if self.monitor is None:
            return rewards
        return self._monitored(rewards, answers, columns.get("log_metric"), columns.get("log_extra"))

    def _monitored(self, rewards: list[float | None], answers: list[str], log_metric, log_extra) -> list[float | None]:
        """The monitor sees this call's rows (lengths in characters), its metrics go to TRL's
        `log_metric` (averaged per logging step, beside kl and entropy), each completion's raw
        reward and verdict to `log_extra` (the completions table), and its policy applies."""
        from rewardkit.scoring.monitor import AuditedRow

        kept = [i for i, r in enumerate(rewards) if r is not None]
        rows = [self._audit.get(i) or AuditedRow(rewards[i]) for i in kept]
        metrics = self.monitor.observe(rows, [len(answers[i]) for i in kept])
        if callable(log_metric):
            for name, value in metrics.items():
                log_metric(name, value)
        if callable(log_extra):
            log_extra(f"{self.__name__}_raw", list(rewards))
            log_extra(f"{self.__name__}_verdict", [getattr(self._audit.get(i), "passed", None) for i in range(len(rewards))])
        return self.monitor.apply(rewards)

    def _scores(self, questions, answers, references, rows: Sequence[int]) -> list[float]:
        """The scorer's rewards for the batch rows `rows`; with a monitor, audited (a judge's two
        orders, a composite's verdicts, kept for `_monitored`), the same numbers."""
        if self.monitor is None:
            return list(self.scorer.reward(questions, answers, references))
        from rewardkit.scoring.monitor import audited_rewards

        audited = audited_rewards(self.scorer, questions, answers, references)
        self._audit = dict(zip(rows, audited))
        return [row.reward for row in audited]

    def _reference(self, questions, answers, references) -> list[float | None]:
        if references is None:
            raise RewardKitError(f"mode 'reference' needs a dataset column '{self.reference_column}' with a "
                                 "reference answer per prompt (or use mode='round_robin')")
        refs = [_reference_text(r, i, self.reference_column) for i, r in enumerate(references)]
        rows = [i for i, r in enumerate(refs) if r is not None]
        if getattr(self.scorer, "pointwise", False) and not rows:  # a scalar model needs no reference
            return [float(x) for x in self._scores(questions, answers, None, range(len(answers)))]
        if len(rows) < len(refs):
            warnings.warn(f"rewardkit: {len(refs) - len(rows)} row(s) have no reference answer; their reward is None",
                          stacklevel=2)
        rewards: list[float | None] = [None] * len(answers)
        if rows:
            scores = self._scores([questions[i] for i in rows], [answers[i] for i in rows], [refs[i] for i in rows], rows)
            for i, score in zip(rows, scores):
                rewards[i] = float(score)
        return rewards

    def _round_robin(self, questions, answers) -> list[float | None]:
        """Completions are grouped by prompt wherever they are in the batch (Online DPO
        interleaves prompts) and, under multi-process training, across the processes (a GRPO
        group is split over ranks); each group is ranked whole and its scores centred. A prompt
        with one completion in all has nothing to be compared with: None, with a warning."""
        everyone, mine = _gather_rows(list(zip(questions, answers)))
        groups: dict[str, list[int]] = {}
        for index, (question, _) in enumerate(everyone):
            groups.setdefault(prompt_to_text(question), []).append(index)
        rewards: dict[int, float | None] = {}
        alone = 0
        wanted = set(mine)
        for members in groups.values():
            if not wanted.intersection(members):
                continue  # another process's group only
            if len(members) == 1:
                alone += 1
                rewards[members[0]] = None
                continue
            result = self.scorer.rank(everyone[members[0]][0], [everyone[i][1] for i in members], strategy="round_robin")
            centre = sum(result.scores) / len(result.scores)  # BT aggregation is centred already; a scalar model's is not
            for i, score in zip(members, result.scores):
                rewards[i] = float(score) - centre
        if alone:
            warnings.warn(f"rewardkit round_robin: {alone} prompt(s) have a single completion in this step; their reward "
                          "is None. Use mode='reference', or generate more than one completion per prompt",
                          stacklevel=2)
        return [rewards[i] for i in mine]


def _gather_rows(rows: list) -> tuple[list, list[int]]:
    """(every process's rows in rank order, the indices of this process's rows among them); in
    one process, the rows themselves. A collective: every process of the group must call it."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return rows, list(range(len(rows)))
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, rows)
    start = sum(len(part) for part in parts[:dist.get_rank()])
    return [row for part in parts for row in part], list(range(start, start + len(rows)))
