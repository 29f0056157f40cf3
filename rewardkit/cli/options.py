"""Typer flags generated from configuration dataclasses, so a method's options are declared
(and documented) once, in its config, and every training command offers them."""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import List, Optional

import typer

# fields that hold files on the command line (in memory elsewhere)
PATH_LISTS = ("data", "eval_data", "ratings", "pairs", "safety_pairs", "labeled", "unlabeled", "general_eval")


def config_parameters(*config_classes, exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One keyword parameter per dataclass field (first class wins on a name clash); every
    default is None, meaning "not given", so YAML values and the dataclass defaults apply."""
    params, seen = [], set(exclude)
    for cls in config_classes:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name in seen:
                continue
            seen.add(f.name)
            annotation = List[Path] if f.name in PATH_LISTS else _plain(hints[f.name])
            domain = f.metadata.get("domain")
            params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[annotation],
                                            default=typer.Option(None, *_declarations(f, annotation), help=_help(f),
                                                                 callback=checked(domain) if domain else None)))
    return params


def checked(domain):
    """A typer callback holding a flag's value to `domain` while the command line is parsed, so a
    bad number exits 2 naming the flag before any data or model loads (rewardkit/domains.py)."""
    def callback(value):
        for item in value if isinstance(value, (list, tuple)) else [value]:
            problem = None if item is None else domain.problem(item)
            if problem:
                raise typer.BadParameter(problem)
        return value

    callback.domain = domain
    return callback


def writable(kind: str):
    """A typer callback for an output path: a `kind` ("file" or "directory") that cannot be
    written there (a directory given for a file, a file under a file, no permission) exits 2
    naming the flag while the command line is parsed, before any model loads."""
    from rewardkit.files import output_problem

    def callback(value):
        problem = None if value is None else output_problem(value, kind)
        if problem:
            raise typer.BadParameter(problem)
        return value

    return callback


def _plain(annotation):
    """int | None → int; list[str] → List[str] (what typer understands)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in args if a is not type(None))
    if typing.get_origin(annotation) is list:
        return List[typing.get_args(annotation)[0]]
    return annotation


def _declarations(f, annotation) -> tuple[str, ...]:
    if annotation is bool:
        return (f.metadata.get("flag") or f"--{f.name.replace('_', '-')}/--no-{f.name.replace('_', '-')}",)
    return ()


def _help(f) -> str:
    text = f.metadata.get("help", "")
    if f.default is not MISSING and f.default is not None and f.name not in PATH_LISTS:
        text += f" [default: {f.default}]"
    return text


def as_plain_values(options: dict) -> dict:
    """Paths → strings, so values compare equal to what a YAML file gives."""
    return {k: ([str(x) for x in v] if isinstance(v, list) else str(v) if isinstance(v, Path) else v)
            for k, v in options.items()}


def build_configs(values: dict, *config_classes) -> list:
    """One instance per class from flat option values (None = not given); every class's
    problems are reported together."""
    from rewardkit.errors import ConfigError

    values = {k: v for k, v in as_plain_values(values).items() if v is not None}
    out, problems = [], []
    for cls in config_classes:
        names = {f.name for f in fields(cls)}
        try:
            out.append(cls(**{k: v for k, v in values.items() if k in names}))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return out
