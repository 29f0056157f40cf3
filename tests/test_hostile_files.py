"""Every reader and writer over generated hostile files, through `rewardkit data convert`.

For every file: no traceback; either exit 2 with a message naming the file (and the line
where there is one), or exit 0 with rows in = rows written + rows rejected, each rejected row
kept in the sidecar. Classes: invalid UTF-8, deep JSON, huge integers, NaN / infinite margins,
lone surrogates, a lone carriage return inside a row, Unicode-whitespace lines, byte-order
marks, oversized CSV cells, extra CSV cells, duplicate headers, corrupt Parquet; outputs in all
four formats with extra fields that mix types and integers beyond int64.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rewardkit.cli.main import app

ROW_CLASSES = ("bad_utf8", "deep_json", "huge_int", "nan_margin", "inf_margin", "lone_surrogate", "carriage_return",
               "unicode_blank_line", "bom")
CSV_CLASSES = ("bad_utf8", "nan_margin", "extra_cells", "duplicate_header", "oversized_cell", "bom", "carriage_return",
               "deep_json_cell", "huge_int_json_cell")


def good(i: int) -> dict:
    extra = {"meta": i if i % 2 else f"text {i}"}  # an extra field that mixes int and text
    if i == 1:
        extra["big"] = 10**30  # beyond int64
    return {"prompt": f"What is {i}+{i}?", "chosen": str(2 * i), "rejected": str(2 * i + 1), **extra}


def jsonl_bytes(kind: str, n: int, at: int) -> tuple[bytes, int]:
    """(file, data rows in it): n good rows with the hostile one at `at`."""
    lines = [json.dumps(good(i)).encode() for i in range(n)]
    row = dict(good(at))
    hostile = {
        "bad_utf8": lambda: json.dumps(row).encode().replace(b'"chosen": "', b'"chosen": "\xff\xfe', 1),
        "deep_json": lambda: b'{"prompt": ' + b"[" * 50000 + b"]" * 50000 + b"}",
        "huge_int": lambda: json.dumps({**row, "margin": 0}).encode().replace(b'"margin": 0', b'"margin": ' + b"9" * 5000),
        "nan_margin": lambda: json.dumps({**row, "margin": float("nan")}).encode(),
        "inf_margin": lambda: json.dumps({**row, "margin": float("inf")}).encode(),
        "lone_surrogate": lambda: json.dumps(row).encode().replace(b'"chosen": "', b'"chosen": "\\ud800', 1),
        "carriage_return": lambda: json.dumps(row).encode().replace(b", ", b",\r ", 1),
        "unicode_blank_line": lambda: "\u00a0\u2028".encode(),
        "bom": lambda: json.dumps(row).encode(),
    }[kind]()
    lines[at] = hostile
    data = b"\n".join(lines) + b"\n"
    if kind == "bom":
        data = b"\xef\xbb\xbf" + data
    return data, n


def csv_bytes(kind: str, n: int, at: int) -> tuple[bytes, int]:
    header = ["prompt", "chosen", "rejected", "margin"] + (["chosen"] if kind == "duplicate_header" else [])
    rows = [[f"q{i}", f"a{i}", f"b{i}", "1"] + (["x"] if kind == "duplicate_header" else []) for i in range(n)]
    if kind == "bad_utf8":
        rows[at][1] = "BAD"
    elif kind == "nan_margin":
        rows[at][3] = "nan"
    elif kind == "extra_cells":
        rows[at].append("surplus")
    elif kind == "oversized_cell":
        rows[at][1] = "x" * 200_000
    elif kind == "carriage_return":
        rows[at][1] = "line one\rline two"
    elif kind == "deep_json_cell":  # a cell that looks like JSON, nested past Python's recursion limit
        rows[at][1] = "[" * 5000 + "]" * 5000
    elif kind == "huge_int_json_cell":  # JSON holding an integer longer than Python converts
        rows[at][1] = "[" + "9" * 5000 + "]"

    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    text = "\r\n".join(",".join(cell(c) for c in r) for r in [header] + rows) + "\r\n"
    data = text.encode().replace(b"BAD", b"\xff\xfe")
    if kind == "bom":
        data = b"\xef\xbb\xbf" + data
    return data, n


def run_convert(tmp_path, source, out_suffix: str, skip: bool):
    out = tmp_path / f"out{out_suffix}"
    sidecar = tmp_path / "rejected.jsonl"
    sidecar.unlink(missing_ok=True)
    args = ["data", "convert", str(source), str(out), "--rejected", str(sidecar)] + (["--skip-invalid"] if skip else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert source.name in result.output, result.output
        assert not list(tmp_path.glob(".*.partial")) and not (tmp_path / f"out{out_suffix}.tmp").exists()
        return None
    written = int(result.output.split("wrote ")[1].split(" ")[0])
    rejected = sidecar.read_text().splitlines() if sidecar.exists() else []
    for line in rejected:
        entry = json.loads(line)
        assert entry["raw"] is not None and entry["reason"] and entry["file"] == str(source)
    assert not list(tmp_path.glob(".*.partial")) and not (tmp_path / f"out{out_suffix}.tmp").exists()
    return written, len(rejected)


OUTPUTS = st.sampled_from([".jsonl", ".json", ".csv", ".parquet"])
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(kind=st.sampled_from(ROW_CLASSES), n=st.integers(2, 6), data=st.data(), out=OUTPUTS, skip=st.booleans())
def test_hostile_jsonl_rows(tmp_path, kind, n, data, out, skip):
    at = data.draw(st.integers(0, n - 1))
    content, rows_in = jsonl_bytes(kind, n, at)
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    outcome = run_convert(tmp_path, source, out, skip)
    if outcome is None:
        assert not skip or kind == "never"  # with --skip-invalid a bad row never stops the load
        return
    written, rejected = outcome
    assert written + rejected == rows_in
    harmless = kind in ("carriage_return", "bom")
    assert rejected == (0 if harmless else 1)


@SETTINGS
@given(kind=st.sampled_from(CSV_CLASSES), n=st.integers(2, 6), data=st.data(), out=OUTPUTS, skip=st.booleans())
def test_hostile_csv_rows(tmp_path, kind, n, data, out, skip):
    at = data.draw(st.integers(0, n - 1))
    content, rows_in = csv_bytes(kind, n, at)
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    outcome = run_convert(tmp_path, source, out, skip)
    if outcome is None:  # a file-level problem (duplicate header, a cell past the CSV limit) or a strict load
        assert kind in ("duplicate_header", "oversized_cell") or not skip
        return
    written, rejected = outcome
    assert written + rejected == rows_in
    # a cell that merely looks like JSON is text: the row is fine
    assert rejected == (0 if kind in ("bom", "carriage_return", "deep_json_cell", "huge_int_json_cell") else 1)


@SETTINGS
@given(kind=st.sampled_from(("bad_utf8", "deep_json", "nan_margin", "lone_surrogate", "truncated")), out=OUTPUTS)
def test_hostile_json_documents(tmp_path, kind, out):
    rows = [good(i) for i in range(3)]
    text = json.dumps(rows)
    content = {"bad_utf8": text.encode().replace(b'"0"', b'"\xff"', 1),
               "deep_json": ("[" * 60000 + "]" * 60000).encode(),
               "nan_margin": json.dumps([{**rows[0], "margin": float("nan")}] + rows[1:]).encode(),
               "lone_surrogate": text.replace('"0"', '"\\udfff"', 1).encode(),
               "truncated": text[:-5].encode()}[kind]
    source = tmp_path / "in.json"
    source.write_bytes(content)
    outcome = run_convert(tmp_path, source, out, True)
    if outcome is not None:
        assert outcome[0] + outcome[1] == 3 and outcome[1] == 1


@SETTINGS
@given(kind=st.sampled_from(("nan_margin", "corrupt", "empty")), out=OUTPUTS)
def test_hostile_parquet(tmp_path, kind, out):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    rows = [{"prompt": f"q{i}", "chosen": f"a{i}", "rejected": f"b{i}", "margin": 1.0} for i in range(4)]
    if kind == "nan_margin":
        rows[2]["margin"] = float("nan")
    pq.write_table(pa.Table.from_pylist(rows), source)
    if kind == "corrupt":
        source.write_bytes(source.read_bytes()[:-40])
    elif kind == "empty":
        source.write_bytes(b"")
    outcome = run_convert(tmp_path, source, out, True)
    if kind == "nan_margin":
        assert outcome == (3, 1)
    else:
        assert outcome is None


def test_unwritable_outputs_are_clear_errors(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(good(0)) + "\n")
    (tmp_path / "dir.jsonl").mkdir()
    result = convert(source, tmp_path / "dir.jsonl")  # refused while the command line is read
    assert result.exit_code == 2 and "dir.jsonl is a directory; give a file name" in result.flat
    (tmp_path / "rej").mkdir()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q"}\n')
    result = convert(bad, tmp_path / "o.jsonl", "--skip-invalid", "--rejected", tmp_path / "rej")
    assert result.exit_code == 2 and "rej is a directory" in result.flat
    from rewardkit.data import load_pairs, write_pairs
    from rewardkit.errors import DataError

    with pytest.raises(DataError, match="dir.jsonl: cannot write: Is a directory"):  # the library says it too
        write_pairs(tmp_path / "dir.jsonl", load_pairs(str(source)).records)
    with pytest.raises(DataError, match="rej: cannot write the rejected rows here"):
        load_pairs(str(bad), skip_invalid=True, rejected_path=tmp_path / "rej")


HARMLESS = ("bom", "carriage_return", "deep_json_cell", "huge_int_json_cell")


@pytest.mark.parametrize("command", ["eval", "train-bt"])
@pytest.mark.parametrize("suffix, kind", [(".jsonl", k) for k in ROW_CLASSES] + [(".csv", k) for k in CSV_CLASSES])
def test_hostile_files_through_eval_and_train_bt(tmp_path, tiny_model_dir, command, suffix, kind):
    """The same files through the commands that read them for work, not only `data convert`:
    exit 0 on a harmless file, else exit 2 naming the file — never a traceback."""
    content, _ = (jsonl_bytes if suffix == ".jsonl" else csv_bytes)(kind, 3, 1)
    source = tmp_path / f"in{suffix}"
    source.write_bytes(content)
    extra = ["--max-steps", "1", "--batch-size", "2"] if command == "train-bt" else []
    result = CliRunner().invoke(app, [command, "--model", str(tiny_model_dir), "--data", str(source), "--output",
                                      str(tmp_path / "out"), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if kind in HARMLESS:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 2 and source.name in result.output, result.output


def test_an_output_that_is_an_input_or_another_output_is_refused_and_nothing_is_touched(tmp_path, tiny_model_dir):
    """Issue 34 #1: `--rejected` over the input truncated it; `--rejected` over the output, the
    output over the input, `--output` over `--model`, a selection over its own report."""
    from rewardkit import LoopConfig
    from rewardkit.errors import ConfigError

    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(good(i)) + "\n" for i in range(20)) + "not json\n")
    before = source.read_bytes()
    out = tmp_path / "out.jsonl"
    for args in (["data", "convert", str(source), str(out), "--skip-invalid", "--rejected", str(source)],
                 ["data", "convert", str(source), str(out), "--skip-invalid", "--rejected", str(out)],
                 ["data", "convert", str(source), str(source)],
                 ["data", "balance", str(source), str(tmp_path / "." / "pairs.jsonl")],
                 ["select", "--pool", str(source), "--budget", "2", "--strategy", "random",
                  "--output", str(tmp_path / "pairs.md")]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and "are the same file" in result.output, (args, result.output)
        assert source.read_bytes() == before and not out.exists()
    model_files = sorted(p.name for p in tiny_model_dir.iterdir())
    with pytest.raises(ConfigError, match="is --model: training would overwrite the base model"):
        LoopConfig(model=str(tiny_model_dir), output=str(tiny_model_dir / "." ))
    assert sorted(p.name for p in tiny_model_dir.iterdir()) == model_files


def convert(*args):
    result = CliRunner().invoke(app, ["data", "convert", *map(str, args)], env={"COLUMNS": "2000"})
    result.flat = " ".join(result.output.replace("│", " ").split())  # typer's error box, unwrapped
    return result


def no_partial_files(directory) -> bool:
    return not [p for p in directory.rglob("*") if p.name.endswith((".partial", ".tmp")) and not p.is_symlink()]


def test_outputs_replace_a_planted_link_and_never_write_through_it(tmp_path, tiny_model_dir):
    """Issue 34 #2: the sidecar, the output, a temp name beside it and train_config.json were
    written through symlinks planted at their paths, overwriting the links' targets."""
    from rewardkit import LoopConfig, train_method
    from rewardkit.methods.bradley_terry import BradleyTerryConfig

    victims = {name: tmp_path / f"victim-{i}.txt" for i, name in enumerate(("out.jsonl", "out.jsonl.rejected.jsonl",
                                                                            "out.jsonl.tmp"))}
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(good(i)) + "\n" for i in range(4)) + "not json\n")
    for name, victim in victims.items():
        victim.write_text("precious")
        (tmp_path / name).symlink_to(victim)
    result = convert(source, tmp_path / "out.jsonl", "--skip-invalid", "--rejected", tmp_path / "out.jsonl.rejected.jsonl")
    assert result.exit_code == 0, result.output
    assert all(victim.read_text() == "precious" for victim in victims.values())
    victim = victims["out.jsonl"]
    for name in ("out.jsonl", "out.jsonl.rejected.jsonl"):  # the links themselves were replaced by the outputs
        assert not (tmp_path / name).is_symlink()
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 4
    assert len((tmp_path / "out.jsonl.rejected.jsonl").read_text().splitlines()) == 1
    assert (tmp_path / "out.jsonl.tmp").is_symlink() and no_partial_files(tmp_path)

    run = tmp_path / "run"
    run.mkdir()
    for name in ("train_config.json", "summary.json", "rewardkit.json"):
        (run / name).symlink_to(victim)
    loop = LoopConfig(model=str(tiny_model_dir), data=[str(tmp_path / "out.jsonl")], output=str(run), max_steps=2,
                      batch_size=2, save_every=10**6)
    train_method("bradley_terry", loop, BradleyTerryConfig())
    assert victim.read_text() == "precious"
    assert json.loads((run / "train_config.json").read_text())["max_steps"] == 2
    assert not any((run / name).is_symlink() for name in ("train_config.json", "summary.json", "rewardkit.json"))


def test_an_appended_log_refuses_a_planted_link(tmp_path):
    from rewardkit.files import open_append

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(OSError):
        open_append(tmp_path / "metrics.jsonl")
    assert victim.read_text() == "precious"


def test_a_file_size_limit_stops_the_write_cleanly_and_leaves_no_partial_file(tmp_path):
    """Issue 34 #6: `ulimit -f` (or a full disk) mid-write gave OSError [Errno 27] with a
    partial sidecar left behind."""
    import resource
    import subprocess
    import sys

    source = tmp_path / "pairs.jsonl"
    bad = "".join(json.dumps({"prompt": "q", "chosen": "x" * 2000}) + "\n" for _ in range(200))  # ~400 kB rejected
    source.write_text("".join(json.dumps(good(i)) + "\n" for i in range(5)) + bad)
    before = source.read_bytes()

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    for rejected in ("side.jsonl", None):
        args = [sys.executable, "-m", "rewardkit.cli.main", "data", "convert", str(source), str(tmp_path / "out.jsonl"),
                "--skip-invalid", "--rejected", str(tmp_path / (rejected or "big.jsonl"))]
        done = subprocess.run(args, capture_output=True, text=True, preexec_fn=limit, cwd=tmp_path, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr and "larger than this process may write" in done.stderr, done.stderr
        assert "side.jsonl" in done.stderr or "big.jsonl" in done.stderr
        assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "side.jsonl").exists()
        assert no_partial_files(tmp_path) and source.read_bytes() == before


def test_an_output_under_a_regular_file_or_an_unreadable_input_is_a_clear_error(tmp_path):
    """Issue 34 #6: an output path under a file (NotADirectoryError from the temp clean-up) and
    a read error (a link to /proc/self/mem: OSError EIO) ended in tracebacks."""
    source = tmp_path / "pairs.jsonl"
    source.write_text(json.dumps(good(0)) + "\n")
    (tmp_path / "afile").write_text("x")
    result = convert(source, tmp_path / "afile" / "out.jsonl")
    assert result.exit_code == 2 and "afile is a file" in result.flat and isinstance(result.exception, SystemExit)
    result = convert(source, tmp_path / "out.jsonl", "--skip-invalid", "--rejected", tmp_path / "afile" / "r.jsonl")
    assert result.exit_code == 2 and "afile is a file" in result.flat and isinstance(result.exception, SystemExit)
    mem = tmp_path / "mem.jsonl"
    mem.symlink_to("/proc/self/mem")
    result = convert(mem, tmp_path / "out.jsonl")
    assert result.exit_code == 2 and "mem.jsonl: cannot be read" in result.output, result.output
    assert isinstance(result.exception, SystemExit)


def test_parquet_timestamps_dates_decimals_and_binary_become_json(tmp_path):
    """Issue 34 #6: such columns made every JSON output fail with `not JSON serializable`."""
    import datetime
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "in.parquet"
    table = pa.table({
        "prompt": ["q0", "q1", "q2"], "chosen": pa.array([b"good", b"fine", b"ok"], pa.binary()),
        "rejected": ["bad", "worse", "no"],
        "when": pa.array([datetime.datetime(2026, 12, 4, 1, 2, 3)] * 3, pa.timestamp("us")),
        "day": pa.array([datetime.date(2026, 1, 2)] * 3, pa.date32()),
        "margin": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2"), decimal.Decimal("0.25")], pa.decimal128(5, 2)),
        "took": pa.array([datetime.timedelta(seconds=90)] * 3, pa.duration("s")),
    })
    pq.write_table(table, source)
    for suffix in (".jsonl", ".json", ".csv", ".parquet"):
        result = convert(source, tmp_path / f"out{suffix}")
        assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["chosen"] for r in rows] == ["good", "fine", "ok"] and [r["margin"] for r in rows] == [1.5, 2, 0.25]
    assert rows[0]["when"] == "2026-12-04T01:02:03" and rows[0]["day"] == "2026-01-02" and rows[0]["took"] == 90.0
    pq.write_table(table.set_column(1, "chosen", pa.array([b"good", b"\xff\xfe", b"ok"], pa.binary())), source)
    result = convert(source, tmp_path / "out.jsonl", "--skip-invalid", "--rejected", tmp_path / "r.jsonl")
    assert result.exit_code == 0 and len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
    entry = json.loads((tmp_path / "r.jsonl").read_text())
    assert entry["line"] == 2 and "column 'chosen'" in entry["reason"] and "not UTF-8" in entry["reason"]


def test_silently_wrong_rows_are_refused(tmp_path):
    """Issue 34 #5: scores whose difference overflows became margin Infinity; RM-Bench lists that
    share an entry made a pair of one answer with itself."""
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"prompt": "q", "chosen": "a", "rejected": "b", "score_chosen": 1.7e308,
                                  "score_rejected": -1.7e308}) + "\n" + json.dumps(good(1)) + "\n")
    result = convert(source, tmp_path / "out.jsonl")
    assert result.exit_code == 2 and "in.jsonl:1: field 'score_chosen'" in result.output and "beyond a float" in result.output
    assert not (tmp_path / "out.jsonl").exists()
    rm = tmp_path / "rm.jsonl"
    rm.write_text(json.dumps({"prompt": "q", "chosen": ["x", "y", "z"], "rejected": ["u", "y", "w"]}) + "\n")
    result = convert(rm, tmp_path / "out.jsonl")
    assert result.exit_code == 2 and "rejected[1] is identical to chosen[1]" in result.output, result.output


def test_a_file_shape_is_decided_by_most_rows_not_the_first(tmp_path):
    """Issue 34 #5: a canonical file whose first row lacks `prompt` was read as TRL with prompts
    invented from the answers' shared prefix; one bad first row of an RM-Bench or ShareGPT file
    made every good row rejected."""
    canonical = tmp_path / "canonical.jsonl"
    canonical.write_text(json.dumps({"chosen": "The sky is blue", "rejected": "The sky is green"}) + "\n"
                         + "".join(json.dumps(good(i)) + "\n" for i in range(1, 5)))
    result = convert(canonical, tmp_path / "out.jsonl", "--skip-invalid", "--rejected", tmp_path / "r1.jsonl")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == [f"What is {i}+{i}?" for i in range(1, 5)]  # no prompt "The sky is"
    assert json.loads((tmp_path / "r1.jsonl").read_text())["field"] == "prompt"
    rm = tmp_path / "rm.jsonl"
    rm.write_text(json.dumps({"prompt": "q0", "chosen": "just text", "rejected": ["a", "b"]}) + "\n" + "".join(
        json.dumps({"prompt": f"q{i}", "chosen": ["c1", "c2"], "rejected": ["r1", "r2"]}) + "\n" for i in range(1, 4)))
    result = convert(rm, tmp_path / "out.jsonl", "--skip-invalid", "--rejected", tmp_path / "r2.jsonl")
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3 * 4
    sharegpt = tmp_path / "share.jsonl"
    turn = [{"from": "human", "value": "hi"}]
    sharegpt.write_text(json.dumps({"chosen": "x", "rejected": "y"}) + "\n" + "".join(json.dumps(
        {"conversations": turn, "chosen": {"from": "gpt", "value": f"good {i}"},
         "rejected": {"from": "gpt", "value": f"bad {i}"}}) + "\n" for i in range(3)))
    result = convert(sharegpt, tmp_path / "out.jsonl", "--skip-invalid", "--rejected", tmp_path / "r3.jsonl")
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3


def test_eval_keeps_files_that_share_a_name_apart(tmp_path, tiny_model_dir):
    """Issue 34 #5: `--data a/pairs.jsonl --data b/pairs.jsonl` reported one file's pairs."""
    for folder, n in (("a", 3), ("b", 4)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "pairs.jsonl").write_text("".join(json.dumps(good(i)) + "\n" for i in range(n)))
    result = CliRunner().invoke(app, ["eval", "--model", str(tiny_model_dir), "--data", str(tmp_path / "a" / "pairs.jsonl"),
                                      "--data", str(tmp_path / "b" / "pairs.jsonl"), "--output", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert results["num_pairs"] == 7, results
    assert {name: part["num_pairs"] for name, part in results["per_file"].items()} == {"a/pairs.jsonl": 3,
                                                                                       "b/pairs.jsonl": 4}


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "2000"})
    result.flat = " ".join(result.output.replace("│", " ").split())
    return result


def test_bad_template_config_and_model_files_are_clear_errors(tmp_path, tiny_model_dir):
    """Issue 34 #7: each of these ended in a traceback (YAMLError, JSONDecodeError,
    UnicodeDecodeError, TypeError, AttributeError, OSError, RuntimeError from unpickling)."""
    import shutil

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(good(i)) + "\n" for i in range(4)))
    files = {"bad.yaml": b"user: [unclosed\n", "badutf.yaml": b"user: \xff\xfe\n",
             "labels5.yaml": b"user: '{prompt} {response_a} {response_b}'\nlabels: 5\n", "user123.yaml": b"user: 123\n",
             "cfg_lr.yaml": b"lr: abc\n", "cfg_bs.yaml": b"batch_size: '4'\n", "cfg_bad.yaml": b"lr: [\n",
             "cfg.json": b"{bad json", "list.yaml": b"- 1\n- 2\n", "afile": b"x"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    train = ["--model", tiny_model_dir, "--data", data, "--max-steps", "1", "--output", tmp_path / "out"]
    expected = {
        ("finetune", *train, "--template", tmp_path / "bad.yaml"): "bad.yaml: line 2 column 1: not valid YAML",
        ("finetune", *train, "--template", tmp_path / "badutf.yaml"): "badutf.yaml: line 1: not valid UTF-8",
        ("finetune", *train, "--template", tmp_path / "labels5.yaml"): "'labels' must be a list of two texts",
        ("finetune", *train, "--template", tmp_path / "user123.yaml"): "'user' must be text, got int 123",
        ("train-bt", *train, "--config", tmp_path / "cfg_lr.yaml"): "--lr: must be a finite number > 0 (got 'abc')",
        ("train-bt", *train, "--config", tmp_path / "cfg_bs.yaml"): "--batch-size: must be an integer ≥ 1 (got '4')",
        ("train-bt", *train, "--config", tmp_path / "cfg_bad.yaml"): "cfg_bad.yaml: line 2 column 1: not valid YAML",
        ("train-bt", *train, "--config", tmp_path / "cfg.json"): "cfg.json: line 1 column 2: not valid JSON",
        ("train-bt", *train, "--config", tmp_path / "list.yaml"): "list.yaml: must hold a mapping of key: value, not list",
        ("train-bt", "--model", tmp_path / "afile", "--data", data, "--output", tmp_path / "o2"): "afile is a file",
        ("train-bt", "--model", tiny_model_dir, "--data", data, "--output", tmp_path / "afile"):
            "--output: " + str(tmp_path / "afile") + " is an existing file",
        ("eval", "--model", tiny_model_dir, "--data", data, "--output", tmp_path / "afile"): "afile is an existing file",
        ("eval", "--model", tiny_model_dir, "--data", data, "--output", tmp_path / "afile" / "x"): "afile is a file",
        ("score", "--model", tiny_model_dir, "--data", data, "--output", tmp_path / "afile" / "x.jsonl"): "afile is a file",
        ("select", "--pool", data, "--budget", "2", "--strategy", "random", "--output", tmp_path / "afile" / "x.jsonl"):
            "afile is a file",
        ("export", tiny_model_dir, tmp_path / "afile"): "afile is an existing file",
        ("best-of-n", "--policy", tiny_model_dir, "--model", tiny_model_dir, "--prompts", tmp_path / "missing.jsonl",
         "--output", tmp_path / "b.jsonl"): "missing.jsonl: no such file",
    }
    (tmp_path / "emb.parquet").write_text("not parquet")
    expected[("select", "--pool", data, "--target", data, "--budget", "2", "--strategy", "ot", "--model", tiny_model_dir,
              "--pool-embeddings", tmp_path / "emb.parquet", "--output", tmp_path / "s.jsonl")] = \
        "emb.parquet: not a Parquet file written by `rewardkit embed`"
    for name in ("manifest", "model_type", "adapter"):
        shutil.copytree(tiny_model_dir, tmp_path / name)
    (tmp_path / "manifest" / "rewardkit.json").write_text("[1, 2]")
    config = json.loads((tmp_path / "model_type" / "config.json").read_text())
    (tmp_path / "model_type" / "config.json").write_text(json.dumps({**config, "model_type": "no_such_type",
                                                                     "auto_map": {"AutoModel": "x.Y"}}))
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps(
        {"base_model_name_or_path": str(tiny_model_dir), "peft_type": "LORA", "r": 2, "target_modules": ["q_proj"]}))
    (tmp_path / "adapter" / "adapter_model.bin").write_bytes(b"PK\x03\x04 not a checkpoint")
    evaluate = ("eval", "--data", data, "--output", tmp_path / "ev")
    expected[(*evaluate, "--model", tmp_path / "manifest")] = "rewardkit.json: must hold a JSON object"
    expected[(*evaluate, "--model", tmp_path / "model_type")] = "model type `no_such_type`"
    expected[(*evaluate, "--model", tmp_path / "adapter")] = "rewardkit does not unpickle adapter_model.bin"
    for args, message in expected.items():
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert isinstance(result.exception, SystemExit), (args, repr(result.exception))
        assert message in result.flat, (args, result.flat)
    assert not (tmp_path / "out").exists()  # every refusal came before training wrote anything


def test_an_unreachable_hub_id_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, at import
    data = tmp_path / "pairs.jsonl"
    data.write_text(json.dumps(good(0)) + "\n")
    result = cli("eval", "--model", "nobody-xyz/does-not-exist", "--data", data, "--output", tmp_path / "ev")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), repr(result.exception)
    assert "could not load model 'nobody-xyz/does-not-exist'" in result.flat
