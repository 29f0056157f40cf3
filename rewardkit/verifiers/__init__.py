"""Verifiers: checks of an answer that need no learned model (extra `rewardkit[verify]` for math).

    from rewardkit.verifiers import math_answer, code_passes_tests
    math_answer("... so the answer is $\\frac{1}{2}$", "0.5").passed      # True
    code_passes_tests(answer, "assert add(2, 3) == 5").passed             # run in the sandbox
"""

from rewardkit.verifiers.checks import (
    Verdict,
    code_passes_tests,
    exact_match,
    extract_code,
    json_answer,
    math_answer,
    regex_match,
)
from rewardkit.verifiers.sandbox import Limits, Outcome, run_python

__all__ = ["Limits", "Outcome", "Verdict", "code_passes_tests", "exact_match", "extract_code", "json_answer",
           "math_answer", "regex_match", "run_python"]
