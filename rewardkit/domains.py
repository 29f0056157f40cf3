"""The values a numeric option may take, declared once beside the option.

A configuration field says its domain in its metadata (`option(..., domain=POSITIVE)`); the
CLI's flags are generated from those fields and check it while parsing (exit 2, `--flag: must be
… (got …)`, before any data or model loads), and the dataclass checks it again when it is built
from YAML or Python. Hand-written flags take the same domains (cli/options.py `checked`). The
tests generate hostile values for every numeric flag from these domains (`Domain.outside`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Domain:
    text: str  # "a number > 0": how the error message names the domain
    integer: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value) -> str | None:
        """Why `value` is outside the domain, or None."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be {self.text} (got {value!r})"
        if self.integer and not float(value).is_integer():
            return f"must be {self.text} (got {value!r})"
        if not math.isfinite(value):
            return f"must be {self.text} (got {value})"
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return f"must be {self.text} (got {value})"
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return f"must be {self.text} (got {value})"
        return None

    def outside(self) -> list[str]:
        """Values a user might type that lie outside the domain (command-line text)."""
        values = ["nan", "inf", "-inf"] if not self.integer else ["1.5"]
        if self.low is not None:
            values.append(_text(self.low if self.low_open else self.low - 1, self.integer))
            if not self.integer and not self.low_open:
                values.append(_text(self.low - 1e-3, False))
        if self.high is not None:
            values.append(_text(self.high if self.high_open else self.high + 1, self.integer))
        return values


def _text(value: float, integer: bool) -> str:
    return str(int(value)) if integer else repr(float(value))


POSITIVE = Domain("a finite number > 0", low=0, low_open=True)
NON_NEGATIVE = Domain("a finite number ≥ 0", low=0)
FINITE = Domain("a finite number")
SHARE = Domain("a number in [0, 1)", low=0, high=1, high_open=True)  # a share of steps or rows
OPEN_UNIT = Domain("a number in (0, 1)", low=0, high=1, low_open=True, high_open=True)
PROBABILITY = Domain("a number in [0, 1]", low=0, high=1)
COUNT = Domain("an integer ≥ 1", integer=True, low=1)
COUNT_OR_ZERO = Domain("an integer ≥ 0", integer=True, low=0)
SEED = Domain("an integer in [0, 2³²)", integer=True, low=0, high=2**32 - 1)
PORT = Domain("a port number in [1, 65535]", integer=True, low=1, high=65535)
AT_LEAST_TWO = Domain("an integer ≥ 2", integer=True, low=2)
CONFIDENCE = Domain("a number in (0.5, 1)", low=0.5, high=1, low_open=True, high_open=True)  # max(p, 1 − p)


def domain_problems(config) -> list[str]:
    """`--flag: must be …` for every field of a dataclass instance outside its declared domain
    (None means "not given" and is never checked; a list is checked item by item)."""
    problems = []
    for f in fields(config):
        domain = f.metadata.get("domain")
        value = getattr(config, f.name)
        if domain is None or value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            problem = domain.problem(item)
            if problem:
                problems.append(f"--{f.name.replace('_', '-')}: {problem}")
                break
    return problems


def check_domains(config) -> None:
    """Raise ConfigError listing every field of `config` outside its domain (see domain_problems)."""
    from rewardkit.errors import ConfigError

    problems = domain_problems(config)
    if problems:
        raise ConfigError("invalid options:\n  " + "\n  ".join(problems))
