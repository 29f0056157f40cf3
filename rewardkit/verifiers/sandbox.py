"""Running code from a model's answer where it can do no harm, and saying what it tried.

A subprocess in a fresh temporary directory with an empty environment and `python -I`
(no user site, no PYTHON* variables), and, on Linux:
  - limits on CPU time, address space, file size, open files and processes (setrlimit);
  - its own network namespace: no interface but a loopback of its own, so no connection leaves
    it — the parent's services on 127.0.0.1 included;
  - its own mount namespace with private, empty /tmp, /var/tmp and /dev/shm, and, when the
    parent runs as root, a user id of its own (never root, never the parent's), so the rest of
    the filesystem is read-only to it and nothing it writes outlives it;
  - a wall-clock timeout, after which every process of that user id is killed (a fork bomb's
    children included), and stdout/stderr kept to `output_bytes`.
Each layer that the machine does not allow (no root and no unprivileged user namespaces, or not
Linux) is reported in `Outcome.isolation` rather than assumed; `require_isolation=True` refuses
to run without network and filesystem isolation.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rewardkit.errors import ConfigError

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 16384, 1 << 18
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
_UIDS = itertools.count()


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 1024  # address space; CPython itself takes ~100 MB of it
    file_mb: int = 8  # any one file it writes, stdout and stderr included
    open_files: int = 64
    processes: int = 32  # with a user id of its own: every process it may have at once
    output_bytes: int = 64 * 1024  # of stdout and of stderr kept


@dataclass
class Outcome:
    status: str  # ok | failed (non-zero exit) | timeout | cpu_limit | memory_limit | file_limit | killed
    returncode: int | None
    stdout: str
    stderr: str
    truncated: bool  # stdout or stderr was longer than output_bytes
    wall_s: float
    isolation: dict = field(default_factory=dict)  # {"network": bool, "filesystem": bool, "user": "own"|"parent"}

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run_python(code: str, *, stdin: str = "", limits: Limits = Limits(), require_isolation: bool = False) -> Outcome:
    """Run `code` as a Python program in the sandbox, with `stdin` as its standard input."""
    if not sys.platform.startswith("linux"):
        raise ConfigError("the code sandbox needs Linux (namespaces and setrlimit); it does not run code elsewhere")
    root = os.geteuid() == 0
    uid = 60000 + (os.getpid() * 64 + next(_UIDS)) % 5000 if root else None
    work = Path(tempfile.mkdtemp(prefix="rewardkit-sandbox-"))
    try:
        (work / "main.py").write_text(code, encoding="utf-8", errors="surrogatepass")
        (work / "stdin").write_text(stdin, encoding="utf-8", errors="surrogatepass")
        if uid is not None:
            os.chown(work, uid, uid)
        report = work / ".isolation"
        with (work / "stdin").open("rb") as given, (work / ".stdout").open("wb") as out, \
                (work / ".stderr").open("wb") as err, (work / "main.py").open("rb") as program:
            started = time.monotonic()
            # the program is read through an inherited descriptor: its directory may be hidden
            # from the child by the private /tmp
            process = subprocess.Popen([interpreter(uid), "-I", f"/dev/fd/{program.fileno()}"], stdin=given,
                                       stdout=out, stderr=err, env={"PYTHONIOENCODING": "utf-8", "LANG": "C.UTF-8"},
                                       cwd=work, close_fds=True, pass_fds=(program.fileno(),),
                                       preexec_fn=lambda: _enter(limits, work, uid, report))
            timed_out = False
            try:
                process.wait(timeout=limits.wall_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            wall = time.monotonic() - started
            _kill_everything(process, uid)
        isolation = _read_isolation(report, uid)
        if require_isolation and not (isolation["network"] and isolation["filesystem"]):
            raise ConfigError(f"the sandbox could not isolate the code on this machine ({isolation}); it needs root or "
                              "unprivileged user namespaces")
        stdout, cut_out = _capped(work / ".stdout", limits.output_bytes)
        stderr, cut_err = _capped(work / ".stderr", limits.output_bytes)
        status = _status(process.returncode, stderr, timed_out)
        return Outcome(status, None if timed_out else process.returncode, stdout, stderr, cut_out or cut_err,
                       round(wall, 3), isolation)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def interpreter(uid: int | None) -> str:
    """A Python the sandbox's user may run: this one, unless it lies where only its owner can go
    (a pyenv under /root), then the system's python3. `REWARDKIT_SANDBOX_PYTHON` chooses."""
    chosen = os.environ.get("REWARDKIT_SANDBOX_PYTHON")
    if chosen:
        return chosen
    candidates = [os.path.realpath(sys.executable)] + [p for p in (shutil.which("python3"), "/usr/bin/python3") if p]
    for candidate in candidates:
        if uid is None or _others_may_run(Path(os.path.realpath(candidate))):
            return candidate
    raise ConfigError("no Python interpreter that the sandbox's user may run; set REWARDKIT_SANDBOX_PYTHON")


def _others_may_run(path: Path) -> bool:
    if not path.is_file() or not path.stat().st_mode & 0o001:
        return False
    return all(parent.stat().st_mode & 0o001 for parent in path.parents)


def _enter(limits: Limits, work: Path, uid: int | None, report: Path) -> None:
    """In the child, before exec: namespaces, private scratch dirs, limits, its own user."""
    import resource

    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    here = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
    network = filesystem = False
    flags = CLONE_NEWNET | CLONE_NEWNS | (0 if uid is not None else CLONE_NEWUSER)
    if libc.unshare(flags) == 0:
        network = True
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) == 0:
            filesystem = all(libc.mount(b"tmpfs", d.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=16m") == 0
                             for d in PRIVATE_DIRS if os.path.isdir(d))
    scratch = None
    if filesystem:  # its working directory: a fresh one in the private /tmp, gone with it
        scratch = "/tmp/sandbox"
        os.makedirs(scratch, exist_ok=True)
        if uid is not None:
            os.chown(scratch, uid, uid)
    # through the directory's descriptor: its path may now lie under the private /tmp
    os.write(os.open(report.name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=here),
             f"{int(network)}{int(filesystem)}".encode())
    for limit, value in ((resource.RLIMIT_AS, limits.memory_mb * 2**20), (resource.RLIMIT_FSIZE, limits.file_mb * 2**20),
                         (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_NPROC, limits.processes),
                         (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))  # SIGXCPU first, SIGKILL a second later
    if uid is not None:  # root: a user id of its own, so the rest of the filesystem is read-only to it
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    if scratch:
        os.chdir(scratch)
    else:
        os.fchdir(here)


def _read_isolation(report: Path, uid: int | None) -> dict:
    flags = report.read_text() if report.is_file() else "00"
    return {"network": flags[0] == "1", "filesystem": flags[1] == "1" and uid is not None,
            "user": "own" if uid is not None else "parent"}


def _kill_everything(process: subprocess.Popen, uid: int | None) -> None:
    """The process group; with a user id of its own, every process of that id at once — a
    helper that takes the id sends SIGKILL to -1, which the kernel delivers to all of them in
    one pass, so a fork bomb cannot outrun it."""
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGKILL)
    if uid is not None:
        helper = os.fork()
        if helper == 0:  # pragma: no cover (the child)
            try:
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            os.waitpid(helper, 0)
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _capped(path: Path, limit: int) -> tuple[str, bool]:
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def _status(returncode: int | None, stderr: str, timed_out: bool) -> str:
    if timed_out:
        return "timeout"
    if returncode == 0:
        return "ok"
    if returncode == -signal.SIGXCPU:
        return "cpu_limit"
    if returncode == -signal.SIGXFSZ or "[Errno 27]" in stderr:
        return "file_limit"
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return "memory_limit"
    return "killed" if returncode is not None and returncode < 0 else "failed"
