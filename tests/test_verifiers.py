"""The verifiers on answers with known verdicts, and the sandbox against hostile code, case by
case: each escape attempt is contained and reported."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from rewardkit.errors import RewardKitError
from rewardkit.verifiers import Limits, code_passes_tests, exact_match, extract_code, json_answer, math_answer, regex_match, run_python

ROOT = os.geteuid() == 0
FAST = Limits(wall_s=3, cpu_s=2)


def test_math_answers_compare_by_value_not_by_text():
    assert math_answer("Half of it: the answer is $\\frac{1}{2}$.", "0.5").passed is True
    assert math_answer("so x = \\boxed{4}", "$4$").passed is True
    assert math_answer("The result is 5.", "4").passed is False
    assert math_answer("I cannot say.", "4").passed is False
    assert math_answer("42", "no number here").passed is None


def test_exact_regex_and_json_checks():
    assert exact_match("  Paris. ", "paris").passed and not exact_match("Paris", "paris", normalise=False).passed
    assert regex_match("The answer: B", r"answer:\s*[A-D]").details["match"] == "answer: B"
    assert regex_match("nothing", r"\d+").passed is False
    with pytest.raises(RewardKitError, match="regex"):
        regex_match("x", "(")
    assert json_answer('Here:\n```json\n{"name": "a", "age": 3}\n```', required_keys=("name", "age")).passed
    missing = json_answer('{"name": "a"}', required_keys=("name", "age"))
    assert missing.passed is False and "age" in missing.reason
    assert json_answer("{not json").passed is False


def test_code_is_taken_from_the_answer_and_run_against_the_tests():
    answer = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nHope it helps."
    assert extract_code(answer).startswith("def add")
    assert code_passes_tests(answer, "assert add(2, 3) == 5").passed is True
    wrong = code_passes_tests(answer.replace("a + b", "a - b"), "assert add(2, 3) == 5")
    assert wrong.passed is False and "AssertionError" in wrong.reason
    assert code_passes_tests("Just use a loop, I think.", "assert add(1, 1) == 2").passed is None
    hang = code_passes_tests("```python\ndef add(a, b):\n    while True: pass\n```", "add(1, 2)", limits=FAST)
    assert hang.passed is False and hang.details["status"] in ("timeout", "cpu_limit")


def _sandbox_processes() -> list[int]:
    """Live processes (zombies aside: dead, waiting for init to reap them) of the user ids the
    sandbox gives its runs (60000-64999)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if 60000 <= entry.stat().st_uid < 65000 and state != "Z":
                    found.append(int(entry.name))
            except (OSError, IndexError):
                pass
    return found


needs_root = pytest.mark.skipif(not ROOT, reason="the sandbox has a user id of its own (and its checks here) only "
                                                 "when rewardkit runs as root; elsewhere Outcome.isolation says so")


def test_a_plain_program_runs_with_its_input():
    outcome = run_python("print(input().upper())", stdin="hello\n")
    assert outcome.ok and outcome.stdout == "HELLO\n" and outcome.returncode == 0


def test_an_infinite_loop_is_stopped_at_the_cpu_limit_or_the_wall_clock():
    started = time.monotonic()
    outcome = run_python("while True: pass", limits=Limits(wall_s=5, cpu_s=1))
    assert outcome.status == "cpu_limit" and time.monotonic() - started < 5
    outcome = run_python("import time; time.sleep(60)", limits=Limits(wall_s=1))
    assert outcome.status == "timeout" and outcome.wall_s < 3


@needs_root
def test_a_fork_bomb_is_contained_and_every_process_is_gone_after():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    outcome = run_python(bomb, limits=Limits(wall_s=2, processes=16))
    assert outcome.status == "timeout"
    deadline = time.monotonic() + 5
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sandbox_processes() == []


def test_huge_output_is_capped():
    outcome = run_python("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", limits=Limits(wall_s=5, file_mb=1))
    assert outcome.status == "file_limit" and outcome.truncated and len(outcome.stdout) == Limits().output_bytes


def test_memory_beyond_the_limit_is_refused():
    outcome = run_python("block = bytearray(8 * 1024 ** 3)", limits=Limits(memory_mb=512))
    assert outcome.status == "memory_limit"


@needs_root
def test_writes_outside_its_directory_are_refused_or_vanish():
    outcome = run_python("open('/etc/rewardkit-sandbox-probe', 'w').write('x')")
    assert outcome.status == "failed" and "Permission denied" in outcome.stderr
    assert not Path("/etc/rewardkit-sandbox-probe").exists()
    outcome = run_python("open('/tmp/rewardkit-sandbox-probe', 'w').write('x'); print(open('/tmp/rewardkit-sandbox-probe').read())")
    assert outcome.ok and outcome.stdout == "x\n" and outcome.isolation["filesystem"]  # a private /tmp of its own
    assert not Path("/tmp/rewardkit-sandbox-probe").exists()
    outcome = run_python("open('big', 'wb').write(b'x' * 3 * 1024 ** 2)", limits=Limits(file_mb=1))
    assert outcome.status == "file_limit"


@needs_root
def test_no_connection_leaves_the_sandbox():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    outcome = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')")
    assert outcome.status == "failed" and "connected" not in outcome.stdout and outcome.isolation["network"]
    with pytest.raises(socket.timeout):
        server.accept()  # nothing reached the parent's service
    server.close()


def test_the_parents_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("REWARDKIT_TEST_SECRET", "s3cret")
    code = ("import os\nprint(sorted(os.environ))\n"
            "try:\n    print(open(f'/proc/{os.getppid()}/environ', 'rb').read().count(b's3cret'))\n"
            "except OSError as exc:\n    print('refused', exc.errno)")
    outcome = run_python(code)
    assert outcome.ok and "REWARDKIT_TEST_SECRET" not in outcome.stdout and "s3cret" not in outcome.stdout
    if ROOT:  # another user id: the parent's /proc entries are closed to it
        assert "refused" in outcome.stdout or outcome.stdout.strip().endswith("0")


def test_isolation_is_reported_not_assumed():
    outcome = run_python("print(1)")
    assert set(outcome.isolation) == {"network", "filesystem", "user"}
    if ROOT:
        assert outcome.isolation == {"network": True, "filesystem": True, "user": "own"}
