"""Writing an output file whole or not at all, without following links we did not create.

Every output goes to a fresh temporary file beside its path (created exclusively under a random
name, so a link planted at any predictable name is never followed) and is renamed over the path
only when complete. A symlink at the path itself is replaced, its target left untouched; a failed
write (a full disk, `ulimit -f`, an error in the producer) removes the temporary file and leaves
whatever was at the path before.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _prepare(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(21, "Is a directory", str(path))


def _fresh_temp(path: Path) -> tuple[int, Path]:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; an output gets the usual mode
    return fd, Path(name)


@contextlib.contextmanager
def replacing(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8",
              newline: str | None = None) -> Iterator:
    """A handle to write `path`'s new content into; it replaces `path` when the block ends
    without an error, and is discarded otherwise. Raises OSError as the system gives it."""
    path = Path(path)
    _prepare(path)
    fd, temp = _fresh_temp(path)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding,
                       newline=None if "b" in mode else newline) as handle:
            yield handle
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> None:
    with replacing(path, encoding=encoding) as handle:
        handle.write(text)


def write_bytes(path: str | Path, data: bytes) -> None:
    with replacing(path, "wb") as handle:
        handle.write(data)


def replace_with(path: str | Path, produce: Callable[[Path], object]) -> None:
    """For writers that want a file name (pyarrow, safetensors): `produce(temp)` writes the
    fresh temporary file, which then replaces `path`; on any error it is removed."""
    path = Path(path)
    _prepare(path)
    fd, temp = _fresh_temp(path)
    os.close(fd)
    try:
        produce(temp)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def open_append(path: str | Path):
    """Open `path` for appending, refusing (OSError ELOOP) to follow a symlink planted there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    return os.fdopen(fd, "a", encoding="utf-8")


def cannot_write(path: str | Path, exc: OSError) -> str:
    """The one-line reason a write failed, for an error message that already names the file."""
    reasons = {27: "the file is larger than this process may write (ulimit -f)", 28: "no space left on the device",
               40: "it is a symbolic link, which is not followed for writing"}
    return reasons.get(exc.errno, exc.strerror or str(exc))


def output_problem(path: str | Path, kind: str) -> str | None:
    """Why `path` cannot be written as an output `kind` ("file" or "directory"), or None:
    checked before any work starts, so that a long run does not end on it."""
    path = Path(path).expanduser()
    if kind == "directory" and path.exists() and not path.is_dir():
        return f"{path} is an existing file; this writes a directory there"
    if kind == "file" and path.is_dir():
        return f"{path} is a directory; give a file name"
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file, so {path} cannot be made under it"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot write in {ancestor} (permission denied)"
    return None
