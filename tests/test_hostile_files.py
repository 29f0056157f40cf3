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
        assert not (tmp_path / f"out{out_suffix}.tmp").exists()
        return None
    written = int(result.output.split("wrote ")[1].split(" ")[0])
    rejected = sidecar.read_text().splitlines() if sidecar.exists() else []
    for line in rejected:
        entry = json.loads(line)
        assert entry["raw"] is not None and entry["reason"] and entry["file"] == str(source)
    assert not (tmp_path / f"out{out_suffix}.tmp").exists()
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
    result = CliRunner().invoke(app, ["data", "convert", str(source), str(tmp_path / "dir.jsonl")])
    assert result.exit_code == 2 and "dir.jsonl" in result.output and "cannot write" in result.output
    (tmp_path / "rej").mkdir()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q"}\n')
    result = CliRunner().invoke(app, ["data", "convert", str(bad), str(tmp_path / "o.jsonl"), "--skip-invalid",
                                      "--rejected", str(tmp_path / "rej")])
    assert result.exit_code == 2 and "rejected rows" in result.output


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
