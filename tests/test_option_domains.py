"""Every number a command takes is checked before any work starts (issue 33).

The hostile values are generated from the domains the options declare (rewardkit/domains.py:
config fields' metadata, hand-written flags' callbacks), so a new option is covered without a
new test: every numeric flag of every command must declare a domain, and each value outside it
must exit 2 with a message naming the flag — no traceback, before any data or model loads."""

from __future__ import annotations

import inspect
import typing

import pytest
from typer.testing import CliRunner

from rewardkit.cli.main import app

NUMERIC = (int, float)


def commands(typer_app, prefix=()):
    for info in typer_app.registered_commands:
        name = info.name or info.callback.__name__.replace("_command", "").replace("_", "-")
        yield (*prefix, name), info.callback
    for group in typer_app.registered_groups:
        yield from commands(group.typer_instance, (*prefix, group.name))


def numeric_options(callback):
    signature = inspect.signature(callback)
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, str):
            annotation = typing.get_type_hints(callback).get(name, annotation)
        args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
        inner = typing.get_args(args[0]) if typing.get_origin(args[0]) in (list, typing.List) else ()
        base = inner[0] if inner else args[0]
        if base in NUMERIC and base is not bool:
            info = parameter.default
            declared = [d for d in (getattr(info, "param_decls", None) or ()) if d.startswith("-")]
            flag = next((d for d in declared if d.startswith("--")), declared[0] if declared else
                        "--" + name.replace("_", "-"))
            yield flag, base, getattr(getattr(info, "callback", None), "domain", None)


CASES = [(path, flag, kind, domain) for path, callback in commands(app) for flag, kind, domain in numeric_options(callback)]


def test_every_numeric_flag_of_every_command_declares_its_domain():
    assert len(CASES) > 60  # the walk found the commands' numeric flags
    undeclared = [f"{' '.join(path)} {flag}" for path, flag, _, domain in CASES if domain is None]
    assert not undeclared, f"numeric flags without a domain (rewardkit/domains.py): {undeclared}"


def _int_or_none(text):
    try:
        return int(text)
    except ValueError:
        return text


HOSTILE = [(path, flag, value) for path, flag, kind, domain in CASES if domain is not None
           for value in sorted(set(domain.outside()) | ({"nan", "inf", "-1"} if kind is float else {"-1"}))
           if domain.problem(float(value) if kind is float else _int_or_none(value)) is not None]


@pytest.mark.parametrize("path, flag, value", HOSTILE, ids=[f"{' '.join(p)} {f} {v}" for p, f, v in HOSTILE])
def test_a_value_outside_its_domain_exits_2_naming_the_flag(path, flag, value):
    # only the bad flag: what a command also needs (its data, its model) is missing, so the
    # check must come first — click checks the flags given before it looks for missing ones
    given = [f"{flag}={value}"] if flag.startswith("--") else [flag, value]
    result = CliRunner().invoke(app, [*path, *given], catch_exceptions=True)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert f"Invalid value for '{flag}'" in result.output, result.output


def test_configs_built_from_python_or_yaml_hold_the_same_domains():
    from rewardkit import LoopConfig
    from rewardkit.errors import ConfigError
    from rewardkit.methods.judge import JudgeConfig

    for bad in ({"lr": float("nan")}, {"warmup_ratio": float("nan")}, {"weight_decay": -1.0}, {"seed": -1},
                {"weight_decay": float("nan")}, {"epochs": float("inf")}):
        with pytest.raises(ConfigError, match=f"--{next(iter(bad)).replace('_', '-')}: must be"):
            LoopConfig(**bad)
    with pytest.raises(ConfigError, match="--label-smoothing: must be a number in \\[0, 1\\)"):
        JudgeConfig(label_smoothing=float("nan"))
