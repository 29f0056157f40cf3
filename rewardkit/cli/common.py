"""What every command shares: the console, and turning library errors into exit codes."""

from __future__ import annotations

import functools

import typer
from rich.console import Console
from rich.markup import escape

from rewardkit.errors import RewardKitError

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

# --dtype of every command that scores (see models/precision.py)
DTYPE_HELP = ("auto: the precision the model was trained and measured in (an untrained model: bf16 where native, "
              "else fp32); fp32 or bf16 to force one")

EXIT_USER_ERROR = 2  # bad input or options: the message says what to fix


def user_errors(func):
    """Print a RewardKitError as one red line and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RewardKitError as exc:
            # escaped: messages hold brackets of their own ("pip install 'rewardkit[serve]'", "rows[3]")
            console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except OSError as exc:  # the system refused a file (full disk, a file where a directory must be, …)
            console.print(f"[bold red]error:[/] {escape(system_error(exc))}", markup=True, highlight=False)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper


def show_our_warnings_as_one_line() -> None:
    """A warning rewardkit raises (contamination, a slow precision) prints as `warning: …`, not
    as Python's file:line and source line; other libraries' warnings print as they always do."""
    import warnings
    from pathlib import Path

    package = str(Path(__file__).resolve().parents[1])
    plain = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if str(Path(filename).resolve()).startswith(package):
            console.print(f"[yellow]warning:[/] {escape(str(message))}", markup=True, highlight=False)
        else:
            plain(message, category, filename, lineno, file, line)

    if not getattr(warnings.showwarning, "rewardkit", False):
        show.rewardkit = True
        warnings.showwarning = show


def system_error(exc: OSError) -> str:
    """An OSError as one line naming its file(s): what the system refused, and why."""
    from rewardkit.files import cannot_write

    names = " → ".join(str(n) for n in (exc.filename, exc.filename2) if n is not None)
    return f"{names or 'a file'}: {cannot_write(names, exc)}"


def optional_import(module: str, extra: str):
    """The module, or a one-line error naming the extra that installs it (no traceback)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise RewardKitError(f"this command needs the '{extra}' extra ({module} is not installed): "
                             f"pip install 'rewardkit[{extra}]'") from None


def refuse_same_files(**paths) -> None:
    """A ConfigError when two of the named paths are one file (an output over an input, the
    sidecar over the output, a report over the selection): one would silently destroy the other.
    None values are skipped; flags are named as `--name`."""
    from pathlib import Path

    from rewardkit.errors import ConfigError

    seen: dict = {}
    for name, path in paths.items():
        if path is None:
            continue
        key = Path(path).expanduser().resolve()
        if key in seen:
            raise ConfigError(f"{_flag(seen[key])} and {_flag(name)} are the same file ({path}): writing one would "
                              "destroy the other; choose another path")
        seen[key] = name


def _flag(name: str) -> str:
    return name.upper() if name.isupper() else "--" + name.replace("_", "-")
