"""Checks of an answer that need no learned model: math final answers, code against tests,
exact and regex matches, JSON format. Each gives a `Verdict`: passed True or False, or None
when the check cannot decide (no final answer found, no code in the answer), with the reason."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from rewardkit.errors import RewardKitError
from rewardkit.verifiers.sandbox import Limits, run_python

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.S)


@dataclass
class Verdict:
    passed: bool | None  # None: the check cannot decide on this answer
    reason: str
    details: dict = field(default_factory=dict)


def _math_verify():
    try:
        import math_verify
    except ImportError:
        raise RewardKitError("math answers need the 'verify' extra (math-verify is not installed): "
                             "pip install 'rewardkit[verify]'") from None
    return math_verify


def math_answer(answer: str, reference: str) -> Verdict:
    """Whether the answer's final mathematical answer equals the reference's (math-verify:
    LaTeX or plain expressions, \\boxed{}, numbers in any equivalent form)."""
    import threading

    mv = _math_verify()
    # math-verify times itself out with signal.alarm, which only the main thread may use; in a
    # worker thread (the server, verl's reward loop) it runs without that timeout
    main = threading.current_thread() is threading.main_thread()
    parse_options, verify_options = ({}, {}) if main else ({"parsing_timeout": None}, {"timeout_seconds": None})
    gold, given = mv.parse(reference, **parse_options), mv.parse(answer, **parse_options)
    if not gold:
        return Verdict(None, f"no mathematical answer in the reference {reference[:60]!r}")
    if not given:
        return Verdict(False, "no mathematical answer found in the response")
    passed = bool(mv.verify(gold, given, **verify_options))
    return Verdict(passed, "equal to the reference" if passed else "differs from the reference",
                   {"answer": str(given[-1]), "reference": str(gold[-1])})


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def exact_match(answer: str, reference: str, *, normalise: bool = True) -> Verdict:
    """The whole answer equals the reference (case, punctuation and spacing ignored unless
    `normalise=False`)."""
    a, b = (_normalised(answer), _normalised(reference)) if normalise else (answer, reference)
    return Verdict(a == b, "matches the reference" if a == b else "does not match the reference")


def regex_match(answer: str, pattern: str) -> Verdict:
    """The answer contains a match of `pattern` (Python regex)."""
    try:
        found = re.search(pattern, answer)
    except re.error as exc:
        raise RewardKitError(f"regex {pattern!r}: {exc}") from None
    return Verdict(found is not None, f"matches {pattern!r}" if found else f"no match of {pattern!r}",
                   {"match": found.group(0) if found else None})


def json_answer(answer: str, *, required_keys: tuple[str, ...] = ()) -> Verdict:
    """The answer is a JSON object (bare or in a ```json fence) holding `required_keys`."""
    fenced = [body for lang, body in _FENCE.findall(answer) if lang.lower() in ("json", "")]
    text = fenced[-1] if fenced else answer.strip()
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Verdict(False, f"not valid JSON ({str(exc)[:80]})")
    if not isinstance(value, dict):
        return Verdict(False if required_keys else True, f"JSON {type(value).__name__}, not an object")
    missing = [k for k in required_keys if k not in value]
    return Verdict(not missing, f"missing keys {missing}" if missing else "a JSON object with every required key",
                   {"keys": sorted(value)})


def extract_code(answer: str, language: str = "python") -> str | None:
    """The last fenced code block in the language (or unlabelled); the whole answer when it has
    no fence and parses as Python; else None."""
    blocks = [body for lang, body in _FENCE.findall(answer) if lang.lower() in (language, "py" if language == "python" else
                                                                                language, "")]
    if blocks:
        return blocks[-1]
    try:
        compile(answer, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return None
    return answer


def code_passes_tests(answer: str, tests: str, *, limits: Limits = Limits(), require_isolation: bool = False) -> Verdict:
    """The answer's code, followed by `tests` (assert statements, or a check() call), run in the
    sandbox (verifiers/sandbox.py): passed when it exits 0 within the limits."""
    code = extract_code(answer)
    if code is None:
        return Verdict(None, "no Python code found in the response")
    outcome = run_python(code + "\n\n" + tests + "\n", limits=limits, require_isolation=require_isolation)
    last = outcome.stderr.strip().splitlines()[-1][:200] if outcome.stderr.strip() else ""
    reason = {"ok": "passes the tests", "failed": f"fails: {last or 'non-zero exit'}",
              "timeout": f"ran past {limits.wall_s:g} s"}.get(outcome.status, f"stopped: {outcome.status} ({last})")
    return Verdict(outcome.ok, reason, {"status": outcome.status, "wall_s": outcome.wall_s,
                                        "isolation": outcome.isolation})
