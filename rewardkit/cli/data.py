"""`rewardkit data inspect|convert|balance|overlap`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from rewardkit.cli.common import console, out, refuse_same_files, user_errors
from rewardkit.cli.options import checked, writable
from rewardkit.domains import AT_LEAST_TWO, COUNT, SEED

app = typer.Typer(help="Inspect and convert preference data files.", no_args_is_help=True)


@app.command()
@user_errors
def inspect(
    file: Path = typer.Argument(..., help="JSONL, JSON, CSV or Parquet file"),
    format: str = typer.Option("auto", help="row shape: auto, canonical, trl, hh, sharegpt, rmbench, rewardbench, judgebench"),
    tokenizer: Optional[str] = typer.Option(None, help="model name or path whose tokenizer measures lengths"),
    max_length: Optional[int] = typer.Option(None, help="token limit to check judge prompts against", callback=checked(COUNT)),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
):
    """Shape, counts, subsets, token-length percentiles and problems of a file."""
    from rewardkit.data.inspect import inspect_file
    from rewardkit.models import load_tokenizer

    tok = load_tokenizer(tokenizer) if tokenizer else None
    report = inspect_file(file, format, tok, max_length=max_length)
    if as_json:
        out.print_json(json.dumps(report, ensure_ascii=False))
    else:
        _render_report(report)
    if report["invalid_rows"]:
        raise typer.Exit(2)


def _render_report(report: dict) -> None:
    out.print(f"[bold]{report['file']}[/]: format [cyan]{report['format']}[/], {report['pairs']} pairs, "
              f"{report['invalid_rows']} invalid rows, {report['multi_turn']} multi-turn")
    if report["chosen_longer"] is not None:
        out.print(f"chosen answer longer in {report['chosen_longer']:.0%} of the pairs")
    table = Table("subset", "pairs")
    for name, count in report["subsets"].items():
        table.add_row(name, str(count))
    out.print(table)
    if "tokens" in report:
        lengths = Table("tokens", *[k for k in report["tokens"]["prompt"]])
        for name in ("prompt", "chosen", "rejected", "judge_prompt"):
            lengths.add_row(name, *[str(v) for v in report["tokens"][name].values()])
        out.print(lengths)
    for problem in report["problems"]:
        out.print(f"[yellow]problem:[/] {problem}", highlight=False)


@app.command()
@user_errors
def convert(
    input: Path = typer.Argument(..., help="file to read"),
    output: Path = typer.Argument(..., help="file to write (.jsonl, .json, .csv, .parquet)", callback=writable("file")),
    format: str = typer.Option("auto", help="input row shape (see `inspect --help`)"),
    unlabeled: bool = typer.Option(False, help="drop the label: write response_a/response_b in seeded random order"),
    seed: int = typer.Option(0, help="seed for --unlabeled ordering", callback=checked(SEED)),
    skip_invalid: bool = typer.Option(False, help="keep going past bad rows; write them to a sidecar file"),
    rejected: Optional[Path] = typer.Option(None, help="sidecar file for bad rows (default OUTPUT.rejected.jsonl)",
                                            callback=writable("file")),
):
    """Convert any supported shape to the canonical schema (or to unlabeled pairs)."""
    from rewardkit.data import load_pairs, load_response_pairs, write_pairs

    sidecar = rejected or output.with_name(output.name + ".rejected.jsonl")
    refuse_same_files(INPUT=input, OUTPUT=output, rejected=sidecar)
    if unlabeled:
        result = load_response_pairs(input, format, seed=seed, skip_invalid=skip_invalid, rejected_path=sidecar)
    else:
        result = load_pairs(input, format, skip_invalid=skip_invalid, rejected_path=sidecar)
    written = write_pairs(output, result.records)
    out.print(f"wrote {written} {'unlabeled ' if unlabeled else ''}pairs to {output} "
              f"(input format: {result.formats.get(str(input), format)})")
    if result.rejected:
        console.print(f"[yellow]{result.rejected} invalid rows written to {result.rejected_path}[/]")


@app.command()
@user_errors
def balance(
    input: Path = typer.Argument(..., help="labeled pairs to read"),
    output: Path = typer.Argument(..., help="file to write (.jsonl, .json, .csv, .parquet)", callback=writable("file")),
    format: str = typer.Option("auto", help="input row shape (see `inspect --help`)"),
    count: Optional[int] = typer.Option(None, min=2, help="write at most N pairs, the first N/2 of each kind in file "
                                                         "order (default: every pair of the rarer kind and as many "
                                                         "of the other, plus equal-length pairs)", callback=checked(AT_LEAST_TWO)),
    seed: int = typer.Option(0, help="seed for which pairs of the common kind are kept (without --count)", callback=checked(SEED)),
):
    """Length-balanced pairs: the chosen answer longer in exactly half, so that a judge trained on
    them cannot lower its loss by preferring the longer answer."""
    from rewardkit.data import load_pairs, write_pairs
    from rewardkit.data.balance import length_balanced
    from rewardkit.data.inspect import chosen_longer_share

    refuse_same_files(INPUT=input, OUTPUT=output)
    pairs = load_pairs(input, format).records
    kept = length_balanced(pairs, seed=seed, count=count)
    if not kept:
        raise typer.BadParameter(f"{input}: no pair has a chosen answer shorter than the rejected one (or none longer); "
                                 "nothing to balance", param_hint="INPUT")
    write_pairs(output, kept)
    before, after = chosen_longer_share(pairs), chosen_longer_share(kept)
    out.print(f"wrote {len(kept)} of {len(pairs)} pairs to {output}; chosen answer longer in {before:.0%} → {after:.0%}")


@app.command()
@user_errors
def overlap(
    train: list[Path] = typer.Option(..., help="training file(s); repeat the flag for more"),
    eval: list[Path] = typer.Option(..., "--eval", help="evaluation file(s); repeat the flag for more"),
    ngram: int = typer.Option(13, help="length in words of a shared run that counts as overlap", callback=checked(COUNT)),
    output: Optional[Path] = typer.Option(None, help="also write the report as JSON here", callback=writable("file")),
):
    """Decontamination: evaluation rows whose prompt a training file has (exactly, or a run of
    --ngram words), counted per evaluation file and per training file."""
    from rewardkit.data.overlap import OverlapIndex, overlap_report
    from rewardkit.files import write_text

    report = overlap_report(OverlapIndex.from_files(train, ngram), eval)
    table = Table("evaluation file", "rows", "exact prompt", f"{ngram}-word run", "either", "share")
    for path, entry in report["eval"].items():
        share = entry["contaminated"] / entry["rows"] if entry["rows"] else 0.0
        table.add_row(path, str(entry["rows"]), str(entry["exact"]), str(entry["ngram"]), str(entry["contaminated"]),
                      f"{share:.1%}")
    out.print(table)
    for path, entry in report["eval"].items():
        for source, count in entry["by_train_file"].items():
            if count:
                out.print(f"{path}: {count} rows overlap {source}")
    if output:
        write_text(output, json.dumps(report, indent=2))
        out.print(f"→ {output}")
