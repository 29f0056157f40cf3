"""Malformed input: strict loads name file, line and field; --skip-invalid loses nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rewardkit.cli.main import app
from rewardkit.data import load_pairs
from rewardkit.errors import DataError

GOOD = {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "source": "t", "subset": "math"}

# (description, corrupt(row) -> JSONL line text, field the error must name or None)
CORRUPTIONS = {
    "missing_chosen": (lambda r: json.dumps({k: v for k, v in r.items() if k != "chosen"}), "chosen"),
    "int_rejected": (lambda r: json.dumps({**r, "rejected": 5}), "rejected"),
    "empty_prompt": (lambda r: json.dumps({**r, "prompt": "   "}), "prompt"),
    "same_responses": (lambda r: json.dumps({**r, "rejected": r["chosen"]}), "rejected"),
    "bad_margin": (lambda r: json.dumps({**r, "margin": "lots"}), "margin"),
    "bad_message": (lambda r: json.dumps({**r, "prompt": [{"role": "user"}]}), "prompt[0]"),
    "not_json": (lambda r: json.dumps(r)[:-3], None),
    "not_object": (lambda r: json.dumps([r["prompt"]]), None),
}


def good_row(i: int) -> dict:
    return {**GOOD, "prompt": f"What is {i}+{i}?", "chosen": str(2 * i), "rejected": str(2 * i + 1)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(CORRUPTIONS)), n_rows=st.integers(1, 12), data=st.data())
def test_corrupt_row_is_located_and_sidecar_keeps_it(tmp_path, kind, n_rows, data):
    bad_at = data.draw(st.integers(0, n_rows - 1))
    corrupt, field = CORRUPTIONS[kind]
    lines = [json.dumps(good_row(i)) for i in range(n_rows)]
    lines[bad_at] = corrupt(good_row(bad_at))
    path = tmp_path / f"{kind}-{n_rows}-{bad_at}.jsonl"
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(DataError) as info:
        load_pairs(path)
    assert info.value.line == bad_at + 1
    assert f"{path}:{bad_at + 1}:" in str(info.value)
    assert info.value.field == field
    if field:
        assert f"field '{field}'" in str(info.value)

    sidecar = tmp_path / f"{path.stem}.rejected.jsonl"
    result = load_pairs(path, skip_invalid=True, rejected_path=sidecar)
    assert len(result.records) == n_rows - 1
    (entry,) = [json.loads(x) for x in sidecar.read_text().splitlines()]
    assert entry["raw"] == lines[bad_at]  # untouched
    assert entry["line"] == bad_at + 1 and entry["field"] == field and entry["reason"]


@settings(max_examples=60, deadline=None)
@given(row=st.dictionaries(st.sampled_from(["prompt", "chosen", "rejected", "margin", "conversations", "question"]),
                           st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
                           max_size=5))
def test_arbitrary_rows_never_crash_unexpectedly(tmp_path_factory, row):
    path = tmp_path_factory.mktemp("fuzz") / "f.jsonl"
    path.write_text(json.dumps(row) + "\n")
    try:
        result = load_pairs(path)
    except DataError as exc:
        assert exc.line == 1 and str(path) in str(exc)
    else:
        assert all(p.chosen != p.rejected and p.chosen.strip() for p in result.records)


def test_unknown_shape_and_missing_file(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"foo": 1}) + "\n")
    with pytest.raises(DataError, match=r"x.jsonl:1: cannot tell the row's shape"):
        load_pairs(path)
    with pytest.raises(DataError, match="no such file"):
        load_pairs(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="unknown file type"):
        (tmp_path / "x.txt").write_text("hi")
        load_pairs(tmp_path / "x.txt")


def test_cli_inspect_bad_file_exits_2_with_location(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "chosen": 3}) + "\n")
    result = CliRunner().invoke(app, ["data", "inspect", str(path)])
    assert result.exit_code == 2
    assert "bad.jsonl:2: field 'chosen'" in result.output


def test_cli_convert_strict_and_skip_invalid(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(GOOD) + "\n{broken\n" + json.dumps({**GOOD, "prompt": "other"}) + "\n")
    out = tmp_path / "out.csv"
    strict = CliRunner().invoke(app, ["data", "convert", str(src), str(out)])
    assert strict.exit_code == 2 and "in.jsonl:2" in strict.output and not out.exists()
    ok = CliRunner().invoke(app, ["data", "convert", str(src), str(out), "--skip-invalid"])
    assert ok.exit_code == 0, ok.output
    assert len(load_pairs(out).records) == 2
    sidecar = tmp_path / "out.csv.rejected.jsonl"
    assert json.loads(sidecar.read_text())["raw"] == "{broken"


def test_cli_convert_unlabeled(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(good_row(i)) + "\n" for i in range(10)))
    out = tmp_path / "u.jsonl"
    result = CliRunner().invoke(app, ["data", "convert", str(src), str(out), "--unlabeled", "--seed", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(set(r) >= {"prompt", "response_a", "response_b"} and "chosen" not in r for r in rows)
    assert 0 < sum(r["response_a"] == good_row(i)["chosen"] for i, r in enumerate(rows)) < 10


def test_cli_inspect_reports_subsets_and_tokens(tmp_path, tiny_model_dir):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(good_row(i)) + "\n" for i in range(6)) + json.dumps(good_row(0)) + "\n")
    result = CliRunner().invoke(app, ["data", "inspect", str(src), "--tokenizer", str(tiny_model_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pairs"] == 7 and report["subsets"] == {"math": 7} and report["duplicates"] == 1
    assert report["tokens"]["judge_prompt"]["p100"] > report["tokens"]["prompt"]["p100"]


def test_inspect_flags_a_length_shortcut(tmp_path):
    from rewardkit.data.inspect import inspect_file

    def row(i, chosen_longer):
        long, short = "a fuller answer " * 5 + str(i), f"short {i}"
        return {"prompt": f"q{i}?", "chosen": long if chosen_longer else short, "rejected": short if chosen_longer else long}

    skewed, balanced = tmp_path / "skewed.jsonl", tmp_path / "balanced.jsonl"
    skewed.write_text("".join(json.dumps(row(i, i % 5 != 0)) + "\n" for i in range(10)))  # 8 of 10 chosen longer
    same = {"prompt": "q?", "chosen": "yes", "rejected": "no!"}  # equal lengths: not counted
    balanced.write_text("".join(json.dumps(row(i, i % 2 == 0)) + "\n" for i in range(10)) + json.dumps(same) + "\n")
    report = inspect_file(skewed)
    assert report["chosen_longer"] == 0.8 and any("longer one in 80%" in p for p in report["problems"])
    report = inspect_file(balanced)
    assert report["chosen_longer"] == 0.5 and not any("longer" in p for p in report["problems"])


def test_length_balanced_pairs_leave_length_uninformative():
    from rewardkit.data.balance import length_balanced
    from rewardkit.data.inspect import chosen_longer_share
    from rewardkit.types import PreferencePair

    pairs = [PreferencePair(prompt=f"q{i}", chosen="long answer " * (2 if i % 4 else 1) + str(i),
                            rejected="long answer " + str(i) if i % 4 else "long answer " * 3 + str(i)) for i in range(40)]
    pairs.append(PreferencePair(prompt="tie", chosen="abc", rejected="xyz"))
    assert chosen_longer_share(pairs) == 0.75  # 30 of 40 chosen longer
    balanced = length_balanced(pairs, seed=1)
    assert chosen_longer_share(balanced) == 0.5 and len(balanced) == 2 * 10 + 1
    assert all(p in pairs for p in balanced) and [pairs.index(p) for p in balanced] == sorted(pairs.index(p) for p in balanced)
    assert any(p.prompt == "tie" for p in balanced)
    assert length_balanced(pairs, seed=1) == balanced and length_balanced(pairs, seed=2) != balanced
    sized = length_balanced(pairs, count=12)
    assert len(sized) == 12 and chosen_longer_share(sized) == 0.5 and all(p.prompt != "tie" for p in sized)
    shorter = [p for p in pairs if len(p.chosen) < len(p.rejected)]
    assert [p for p in sized if p in shorter] == shorter[:6]  # the first of each kind, in input order
    assert len(length_balanced(pairs, count=30)) == 20  # only 10 chosen-shorter pairs exist


def test_data_balance_writes_length_balanced_pairs_and_refuses_one_sided_files(tmp_path):
    from rewardkit.data import load_pairs
    from rewardkit.data.inspect import chosen_longer_share

    src, dst = tmp_path / "pairs.jsonl", tmp_path / "balanced.jsonl"
    rows = [{"prompt": f"q{i}", "chosen": "a fairly long answer" if i % 4 else "short",
             "rejected": "short" if i % 4 else "a fairly long answer"} for i in range(20)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(app, ["data", "balance", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    kept = load_pairs(dst).records
    assert len(kept) == 10 and chosen_longer_share(kept) == 0.5 and "75% → 50%" in result.output
    sized = CliRunner().invoke(app, ["data", "balance", str(src), str(dst), "--count", "4"])
    assert sized.exit_code == 0 and [p.prompt for p in load_pairs(dst).records] == ["q0", "q1", "q2", "q4"]
    one_sided = tmp_path / "longer.jsonl"
    one_sided.write_text("".join(json.dumps(r) + "\n" for r in rows if int(r["prompt"][1:]) % 4))
    refused = CliRunner().invoke(app, ["data", "balance", str(one_sided), str(dst)])
    assert refused.exit_code != 0 and "longer.jsonl" in refused.output and "nothing to balance" in refused.output
