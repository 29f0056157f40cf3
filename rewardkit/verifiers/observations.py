"""Tool observations for a judge (Themis: Li et al. 2023, "Tool-Augmented Reward Modeling").

Before the verdict, tools run on each answer of a pair and what they find is written into the
judge prompt's `{observations}` slot — the same text in training and in scoring:
  calculator     every `a op b … = c` in the answer re-computed (+ − × ÷ * / x ^, parentheses)
  answer check   the answer's final answer against the question's known answer (math-verify
                 where installed, else normalised exact match)
  tests          the answer's code run on the question's tests in the sandbox (sandbox.py)
What a question offers the tools is its `ToolContext`: the known `answer` and the `tests`, read
from a data row's `answer` and `tests` fields. Wording is rewardkit's own.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from dataclasses import dataclass
from typing import Mapping

from rewardkit.verifiers.checks import Verdict, code_passes_tests, exact_match, extract_code, math_answer

NAMES = ("Assistant A", "Assistant B")
NOTHING = "No tool applies to these answers."
MAX_CHARS = 600  # the observation text at most: a bound that holds whatever the row's length limit
_NUMBER = r"\d+(?:\.\d+)?"
_EXPRESSION = re.compile(rf"((?:\(\s*)*{_NUMBER}(?:\s*\)*\s*[-+*/×÷^x]\s*(?:\(\s*)*{_NUMBER}\s*\)*)+)\s*=\s*(-?{_NUMBER})")
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow}


@dataclass(frozen=True)
class ToolContext:
    """What a question gives the tools: its known final answer and tests for code (either may be None)."""

    answer: str | None = None
    tests: str | None = None

    @classmethod
    def from_extra(cls, extra: Mapping) -> "ToolContext":
        """From a data row's extra fields `answer` and `tests` (text; a number is taken as its text)."""
        def text(key):
            value = extra.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            return value if isinstance(value, str) and value.strip() else None

        return cls(text("answer"), text("tests"))


@dataclass(frozen=True)
class Calculation:
    written: str  # the expression as the answer wrote it
    stated: float
    actual: float | None  # None: it could not be computed (division by zero, too large)

    @property
    def right(self) -> bool:
        return self.actual is not None and math.isclose(self.stated, self.actual, rel_tol=1e-6, abs_tol=1e-9)


def calculations(text: str) -> list[Calculation]:
    """Every `expression = number` in the text, re-computed (at most 20)."""
    found = []
    for match in _EXPRESSION.finditer(text.replace(",", "")):
        expression, stated = match.group(1), float(match.group(2))
        actual = _evaluate(expression)
        if actual is None and expression.count("(") != expression.count(")"):
            continue  # the pattern caught part of a larger expression: not a calculation to judge
        found.append(Calculation(" ".join(match.group(0).split()), stated, actual))
        if len(found) == 20:
            break
    return found


def _evaluate(expression: str) -> float | None:
    source = expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace("x", "*")
    try:
        return _value(ast.parse(source, mode="eval").body)
    except (SyntaxError, ZeroDivisionError, OverflowError, ValueError, TypeError):
        return None


def _value(node) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 1e6):
            raise OverflowError("exponent too large")
        return float(_OPERATORS[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_value(node.operand)
    raise ValueError("not arithmetic")


@dataclass(frozen=True)
class AnswerFacts:
    """What the tools found in one answer."""

    calculations: tuple[Calculation, ...]
    answer_check: Verdict | None  # None: no known answer to check against
    tests: Verdict | None  # None: no tests given


@functools.lru_cache(maxsize=4096)  # both orders of a pair, and every epoch, reuse one run
def answer_facts(response: str, context: ToolContext) -> AnswerFacts:
    check = None
    if context.answer is not None:
        try:
            check = math_answer(response, context.answer)
        except Exception:  # noqa: BLE001 - math-verify missing or failing: the plain check
            check = None
        if check is None or check.passed is None:
            check = exact_match(_last_line(response), context.answer)
    tests = None
    if context.tests is not None:
        tests = code_passes_tests(response, context.tests) if extract_code(response) else \
            Verdict(None, "no code in the answer")
    return AnswerFacts(tuple(calculations(response)), check, tests)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def observe_pair(first: str, second: str, context: ToolContext = ToolContext()) -> str:
    """The observation text for the judge prompt, with the answer shown first as Assistant A."""
    facts = (answer_facts(first, context), answer_facts(second, context))
    lines = [line for line in (_calculator_line(facts), _answer_line(facts, context), _tests_line(facts)) if line]
    return "\n".join(line[:MAX_CHARS // 3] for line in lines) if lines else NOTHING


def _calculator_line(facts) -> str:
    if not any(f.calculations for f in facts):
        return ""
    parts = []
    for name, fact in zip(NAMES, facts):
        wrong = [c for c in fact.calculations if not c.right]
        if not fact.calculations:
            parts.append(f"{name} shows no calculation")
        elif not wrong:
            parts.append(f"{name}'s {len(fact.calculations)} calculation(s) are all correct")
        else:
            shown = "; ".join(f"{c.written} (it is {_number(c.actual)})" for c in wrong[:3])
            parts.append(f"{name} has {len(wrong)} of {len(fact.calculations)} calculation(s) wrong: {shown}")
    return "Calculator: " + ". ".join(parts) + "."


def _answer_line(facts, context: ToolContext) -> str:
    if context.answer is None:
        return ""
    words = {True: "matches the known answer", False: "does not match the known answer",
             None: "has no final answer that could be checked"}
    return "Answer check: " + "; ".join(f"{name}'s final answer {words[fact.answer_check.passed]}"
                                        for name, fact in zip(NAMES, facts)) + "."


def _tests_line(facts) -> str:
    if all(fact.tests is None for fact in facts):
        return ""
    parts = []
    for name, fact in zip(NAMES, facts):
        verdict = fact.tests
        if verdict.passed is True:
            parts.append(f"{name}'s code passes the tests")
        elif verdict.passed is False:
            parts.append(f"{name}'s code fails the tests ({verdict.reason[:80]})")
        else:
            parts.append(f"{name} gives no code to test")
    return "Tests: " + "; ".join(parts) + "."


def _number(value: float | None) -> str:
    if value is None:
        return "undefined"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"
