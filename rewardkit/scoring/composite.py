"""A verifier and a learned reward model as one reward model.

`CompositeReward(model, verifier)` is a `RewardModel` like any other, so the server and the
TRL, OpenRLHF and verl adapters take it exactly as they take a single model. Where the verifier
can decide on a response against its reference (a math answer, code against the tests given as
the reference, …), that verdict sets the reward; elsewhere the model's reward stands.

The scale is the model's reward scale (for a pairwise judge: the log-odds that the response
beats its reference, 0 = as good as the reference). A verified response gets `+verified_reward`
and a refuted one `−verified_reward` (default 5.0: P = 0.993 on the judge's scale).
`mode="verifier_first"` uses the verdict alone where there is one; `mode="mix"` gives
`weight · (±verified_reward) + (1 − weight) · model reward` there. `compare_to_references`
is σ of that reward, so every path that reads a probability agrees with `reward`. Comparisons
without a reference (`compare`, `rank` without one) are the model's: a verifier needs the
reference to decide.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from rewardkit.errors import ConfigError
from rewardkit.types import Prompt, prompt_to_text
from rewardkit.verifiers import Verdict, code_passes_tests, exact_match, json_answer, math_answer, regex_match

Check = Callable[[Prompt, str, "str | None"], Verdict]
SPECS = "math, exact, code (the reference holds the tests), json, or regex:PATTERN"


def verifier_from_spec(spec: str) -> Check:
    """`math` | `exact` | `code` | `json` | `regex:PATTERN` as a check(prompt, response, reference)."""
    name, _, argument = spec.partition(":")

    def undecided_without(reference, run):
        return Verdict(None, "no reference to check against") if reference is None else run(reference)

    checks = {
        "math": lambda p, r, ref: undecided_without(ref, lambda x: math_answer(r, x)),
        "exact": lambda p, r, ref: undecided_without(ref, lambda x: exact_match(r, x)),
        "code": lambda p, r, ref: undecided_without(ref, lambda x: code_passes_tests(r, x)),
        "json": lambda p, r, ref: json_answer(r),
        "regex": lambda p, r, ref: regex_match(r, argument),
    }
    if name not in checks or (name == "regex") != bool(argument):
        raise ConfigError(f"--verifier {spec!r}: use {SPECS}")
    return checks[name]


class CompositeReward:
    def __init__(self, model, verifier: Check | str, *, mode: str = "verifier_first", weight: float = 0.5,
                 verified_reward: float = 5.0):
        if mode not in ("verifier_first", "mix"):
            raise ConfigError(f"mode must be verifier_first or mix, got {mode!r}")
        if not 0.0 <= weight <= 1.0 or not math.isfinite(verified_reward) or verified_reward <= 0:
            raise ConfigError(f"weight must be in [0, 1] and verified_reward a finite number > 0, got {weight}, "
                              f"{verified_reward}")
        self.model = model
        self.check = verifier_from_spec(verifier) if isinstance(verifier, str) else verifier
        self.mode, self.weight, self.verified_reward = mode, weight, verified_reward
        self.kind, self.pointwise = model.kind, model.pointwise
        self.last_verdicts: list[Verdict] = []  # of the latest reward() call, for logs and monitors

    def __getattr__(self, name):  # the model's own attributes (max_length, precision, …)
        return getattr(self.model, name)

    def reward(self, prompts: Sequence[Prompt], responses: Sequence[str], references=None,
               scale: str = "logodds") -> list[float]:
        from rewardkit.scoring.protocol import sigmoid, to_scale

        to_scale(0.5, scale)  # an unknown scale fails before any scoring
        rows = self._scored(prompts, responses, references, everywhere=self.mode == "mix")
        return [row.reward if scale == "logodds" else sigmoid(row.reward) for row in rows]

    def audited(self, prompts: Sequence[Prompt], responses: Sequence[str], references=None) -> list:
        """`reward` (log-odds scale) with, per row, the verdict and the model's own reward — the
        model scores every row here, decided or not — for the over-optimisation monitor."""
        return self._scored(prompts, responses, references, everywhere=True)

    def _scored(self, prompts, responses, references, *, everywhere: bool) -> list:
        from rewardkit.scoring.monitor import AuditedRow, audited_rewards

        refs = self._references(prompts, references)
        verdicts = [self.check(p, r, ref) for p, r, ref in zip(prompts, responses, refs)]
        self.last_verdicts = verdicts
        needed = [i for i, v in enumerate(verdicts) if v.passed is None or everywhere]
        learned = {}
        if needed:
            chosen = [refs[i] for i in needed]
            scored = audited_rewards(self.model, [prompts[i] for i in needed], [responses[i] for i in needed],
                                     None if all(r is None for r in chosen) else chosen)
            learned = dict(zip(needed, scored))
        rows = []
        for i, verdict in enumerate(verdicts):
            model = learned.get(i)
            if verdict.passed is None:
                value = model.reward
            else:
                verified = self.verified_reward if verdict.passed else -self.verified_reward
                value = verified if self.mode == "verifier_first" else \
                    self.weight * verified + (1 - self.weight) * model.reward
            rows.append(AuditedRow(float(value), model.p_ab if model else None, model.p_ba if model else None,
                                   verdict.passed, model.reward if model else None))
        return rows

    def compare_to_references(self, prompts, responses, references) -> list[float]:
        from rewardkit.scoring.protocol import sigmoid

        return [sigmoid(r) for r in self.reward(prompts, responses, references)]

    def compare(self, *args, **kwargs):
        return self.model.compare(*args, **kwargs)

    def compare_details(self, *args, **kwargs):
        return self.model.compare_details(*args, **kwargs)

    def rank(self, prompt, responses, strategy: str = "knockout", reference: str | None = None):
        return self.model.rank(prompt, responses, strategy=strategy, reference=reference)

    @staticmethod
    def _references(prompts, references) -> list:
        if references is None:
            return [None] * len(prompts)
        if isinstance(references, dict):
            return [references.get(prompt_to_text(p)) for p in prompts]
        return list(references)
