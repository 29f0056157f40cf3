"""Reading a YAML or JSON file of options (a --config, a --template): any problem with the file
itself — unreadable, not UTF-8, bad syntax, not a mapping — is a ConfigError naming the file,
and the line and column where the parser stopped."""

from __future__ import annotations

import json
from pathlib import Path

from rewardkit.errors import ConfigError


def read_text_file(path: str | Path, label: str) -> str:
    """The file's text; `label` names it in errors (e.g. "--config settings.yaml")."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{label}: no such file")
    if not path.is_file():
        raise ConfigError(f"{label}: not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{label}: line {line}: not valid UTF-8 (byte {data[exc.start]:#04x}); save it as UTF-8") from None


def read_mapping(path: str | Path, label: str, *, allow_empty: bool = True) -> dict:
    """A file holding one mapping: JSON for a .json suffix, YAML otherwise."""
    import yaml

    text = read_text_file(path, label)
    if Path(path).suffix.lower() == ".json":
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{label}: line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise ConfigError(f"{label}: nested too deeply to be an options file") from None
    else:
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"{label}: {where}not valid YAML ({reason})") from None
        except RecursionError:
            raise ConfigError(f"{label}: nested too deeply to be an options file") from None
    if loaded is None and allow_empty:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{label}: must hold a mapping of key: value, not {type(loaded).__name__}")
    bad_keys = [k for k in loaded if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"{label}: key {bad_keys[0]!r} is not text")
    return loaded
