"""Every reader and row shape, on real rows from ../shared/data."""

from __future__ import annotations

import json
import re

import pytest

from rewardkit.data import load_pairs, load_response_pairs, write_pairs
from rewardkit.data.formats import detect_format
from rewardkit.types import Message, ResponsePair, prompt_to_text


def manifest_counts(shared_data) -> dict[str, int]:
    text = (shared_data / "MANIFEST.md").read_text()
    rows = re.findall(r"^\| `([^`]+\.jsonl)` \|[^|]*\|[^|]*\| (\d+) \|", text, flags=re.M)
    assert rows, "MANIFEST.md table not found"
    return {name: int(count) for name, count in rows}


def pair_files(shared_data) -> list:
    """The preference-pair files (rated-response files, one response per row, are not pairs)."""
    return [p for p in shared_data.glob("*.jsonl") if '"attributes"' not in p.open().readline()]


def test_every_shared_file_loads_with_manifest_counts(shared_data):
    counts = manifest_counts(shared_data)
    assert len(counts) == len(pair_files(shared_data))
    for name, expected in counts.items():
        result = load_pairs(shared_data / name)
        assert len(result.records) == expected, name
        assert result.rejected == 0
        assert result.formats[str(shared_data / name)] == "canonical"


def test_extra_fields_and_margin_are_kept(shared_data):
    pairs = load_pairs(shared_data / "ultrafeedback_binarized_subset.jsonl").records
    with_scores = [p for p in pairs if "source_index" in p.extra]
    assert with_scores, "extra fields must survive"
    scored = [p for p in pairs if p.margin is not None]
    assert scored and all(isinstance(p.margin, float) for p in scored)
    votes = load_pairs(shared_data / "pandalm_testset_v1.jsonl").records[0].extra
    assert "votes" in votes


@pytest.fixture(scope="module")
def real_rows(shared_data):
    rows = [json.loads(line) for line in (shared_data / "llmbar.jsonl").read_text().splitlines()[:12]]
    return [(r["prompt"], r["chosen"], r["rejected"]) for r in rows]


def shaped(shape: str, prompt: str, chosen: str, rejected: str, i: int) -> dict:
    if shape == "canonical":
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "source": "llmbar", "subset": "s"}
    if shape == "trl_conversational":
        return {"prompt": [{"role": "user", "content": prompt}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}
    if shape == "trl_implicit":
        user = {"role": "user", "content": prompt}
        return {"chosen": [user, {"role": "assistant", "content": chosen}],
                "rejected": [user, {"role": "assistant", "content": rejected}]}
    if shape == "hh":
        return {"chosen": f"\n\nHuman: {prompt}\n\nAssistant: {chosen}",
                "rejected": f"\n\nHuman: {prompt}\n\nAssistant: {rejected}"}
    if shape == "sharegpt":
        return {"conversations": [{"from": "human", "value": prompt}],
                "chosen": {"from": "gpt", "value": chosen}, "rejected": {"from": "gpt", "value": rejected}}
    if shape == "rewardbench":
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "chosen_model": "m1",
                "rejected_model": "m2", "subset": "llmbar-natural", "id": i}
    if shape == "judgebench":
        flip = i % 2 == 1
        return {"pair_id": f"p{i}", "question": prompt, "response_A": rejected if flip else chosen,
                "response_B": chosen if flip else rejected, "label": "B>A" if flip else "A>B", "source": "jb"}
    raise AssertionError(shape)


SHAPES = ["canonical", "trl_conversational", "trl_implicit", "hh", "sharegpt", "rewardbench", "judgebench"]
EXPECTED_FORMAT = {"trl_conversational": "trl", "trl_implicit": "trl"}


def write_rows(path, rows):
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".csv":
        import csv

        cols = list(dict.fromkeys(k for r in rows for k in r))
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=cols)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_in_each_file_type(tmp_path, real_rows, shape, suffix):
    rows = [shaped(shape, p, c, r, i) for i, (p, c, r) in enumerate(real_rows)]
    path = tmp_path / f"data{suffix}"
    write_rows(path, rows)
    result = load_pairs(path)
    assert result.formats[str(path)] == EXPECTED_FORMAT.get(shape, shape)
    assert [(prompt_to_text(x.prompt), x.chosen, x.rejected) for x in result.records] == real_rows
    # and the same file read with the shape named explicitly
    named = load_pairs(path, format=EXPECTED_FORMAT.get(shape, shape))
    assert len(named.records) == len(real_rows)


def test_hh_multi_turn_transcript(tmp_path):
    row = {"chosen": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: capital of France?\n\nAssistant: Paris.",
           "rejected": "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: capital of France?\n\nAssistant: Lyon."}
    path = tmp_path / "hh.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (pair,) = load_pairs(path).records
    assert pair.prompt == (Message("user", "hi"), Message("assistant", "hello"), Message("user", "capital of France?"))
    assert (pair.chosen, pair.rejected) == ("Paris.", "Lyon.")


def test_rmbench_expands_styles(tmp_path):
    row = {"id": 7, "prompt": "q", "domain": "chat", "chosen": ["c0", "c1", "c2"], "rejected": ["r0", "r1", "r2"]}
    path = tmp_path / "rm.json"
    path.write_text(json.dumps([row]))
    pairs = load_pairs(path).records
    assert len(pairs) == 9
    assert {(p.extra["chosen_style"], p.extra["rejected_style"]) for p in pairs} == {(i, j) for i in range(3) for j in range(3)}
    assert pairs[5].chosen == "c1" and pairs[5].rejected == "r2" and pairs[5].id == "7:1-2"
    assert all(p.subset == "chat" for p in pairs)


def test_unlabeled_derivation_is_seeded_and_balanced(shared_data):
    path = shared_data / "llmbar.jsonl"
    first = load_response_pairs(path, seed=3).records
    again = load_response_pairs(path, seed=3).records
    other = load_response_pairs(path, seed=4).records
    assert first == again and first != other
    labeled = load_pairs(path).records
    assert all(isinstance(r, ResponsePair) for r in first)
    chosen_first = sum(r.response_a == p.chosen for r, p in zip(first, labeled))
    assert 0.35 < chosen_first / len(first) < 0.65  # position carries no label
    assert all({r.response_a, r.response_b} == {p.chosen, p.rejected} for r, p in zip(first, labeled))


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_write_then_read_round_trip(tmp_path, shared_data, suffix):
    pairs = load_pairs(shared_data / "hh_rlhf_helpful_test_rmgallery.jsonl").records[:20]
    pairs += load_pairs(shared_data / "ultrafeedback_binarized_subset.jsonl").records[:5]
    out = tmp_path / f"out{suffix}"
    assert write_pairs(out, pairs) == 25
    back = load_pairs(out).records
    assert [(p.prompt, p.chosen, p.rejected, p.subset, p.margin) for p in back] == \
           [(p.prompt, p.chosen, p.rejected, p.subset, p.margin) for p in pairs]


def test_unlabeled_files_round_trip(tmp_path, shared_data):
    unl = load_response_pairs(shared_data / "xstest_v2_pairs.jsonl").records
    out = tmp_path / "u.jsonl"
    write_pairs(out, unl)
    assert detect_format(json.loads(out.read_text().splitlines()[0])) == "unlabeled"
    assert load_response_pairs(out).records == unl


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet", ".json"])
def test_message_list_prompts_round_trip(tmp_path, suffix):
    from rewardkit.types import PreferencePair

    pairs = [PreferencePair((Message("system", "be brief"), Message("user", "hi")), "hello", "go away", subset="x"),
             PreferencePair("plain", '["looks", "like json"]', "no", subset="y")]
    out = tmp_path / f"m{suffix}"
    write_pairs(out, pairs)
    back = load_pairs(out).records
    assert [(p.prompt, p.chosen, p.rejected) for p in back] == [(p.prompt, p.chosen, p.rejected) for p in pairs]


def test_in_memory_lists_records_and_datasets(tmp_path):
    import datasets

    from rewardkit.types import PreferencePair

    rows = [{"prompt": "q1", "chosen": "a", "rejected": "b", "margin": 2},
            {"prompt": [{"role": "user", "content": "q2"}], "chosen": "c", "rejected": "d"}]
    from_dicts = load_pairs(rows).records
    assert [p.chosen for p in from_dicts] == ["a", "c"] and from_dicts[0].margin == 2.0
    assert from_dicts[1].prompt == (Message("user", "q2"),)
    records = [PreferencePair("q", "x", "y")]
    assert load_pairs(records).records == records  # records pass through as they are
    dataset = datasets.Dataset.from_list([{"prompt": "q1", "chosen": "a", "rejected": "b"}] * 3)
    assert [p.chosen for p in load_pairs(dataset).records] == ["a"] * 3
    dataset.save_to_disk(str(tmp_path / "saved"))
    assert len(load_pairs(str(tmp_path / "saved")).records) == 3
    unlabeled = load_response_pairs(rows, seed=0).records
    assert all(isinstance(r, ResponsePair) for r in unlabeled)
    assert {unlabeled[0].response_a, unlabeled[0].response_b} == {"a", "b"}


def test_bad_in_memory_row_names_index_and_field(tmp_path):
    from rewardkit.errors import DataError

    rows = [{"prompt": "q1", "chosen": "a", "rejected": "b"}, {"prompt": "q2", "chosen": "", "rejected": "b"}]
    with pytest.raises(DataError) as info:
        load_pairs(rows)
    assert str(info.value).startswith("<list> row 1: field 'chosen':") and info.value.line == 1
    result = load_pairs(rows, skip_invalid=True, rejected_path=tmp_path / "rej.jsonl")
    assert len(result.records) == 1 and result.rejected == 1
    kept = json.loads((tmp_path / "rej.jsonl").read_text())
    assert kept["line"] == 1 and json.loads(kept["raw"]) == rows[1]  # the row is kept, untouched
    with pytest.raises(DataError, match="ResponsePair"):
        load_pairs([ResponsePair("q", "a", "b")])
    with pytest.raises(DataError, match="a directory"):
        load_pairs(str(tmp_path))
    with pytest.raises(DataError, match="no such file"):
        load_pairs(str(tmp_path / "missing.jsonl"))
