"""`rewardkit eval` and `rewardkit score`."""

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rewardkit.cli.common import DTYPE_HELP, console, out, user_errors
from rewardkit.cli.options import checked, writable
from rewardkit.domains import COUNT, SEED
from rewardkit.files import replacing
from rewardkit.scoring.distributed import is_writer, sharded_scoring


def _progress():
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, disable=not is_writer())


@user_errors
def eval_command(
    model: List[str] = typer.Option(["smollm2-135m"], help="trained directory, built-in name, local causal LM or hub "
                                    "id; repeat it to compare models on the same rows (paired differences against "
                                    "the first)"),
    data: List[Path] = typer.Option(..., help="labeled pair file(s); repeat the flag for more"),
    output: Path = typer.Option(Path("runs/eval"), help="directory for results.json, report.md, PNGs, scores.jsonl",
                               callback=writable("directory")),
    max_pairs: Optional[int] = typer.Option(None, help="seeded sample of at most N pairs per file", callback=checked(COUNT)),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
    max_length: Optional[int] = typer.Option(None, help="token limit per judge prompt (truncation keeps the verdict)", callback=checked(COUNT)),
    backend: str = typer.Option("eager", help="decoder pass: eager (PyTorch), onnx, openvino, openvino-int8, int8, "
                                              "compile, auto (by machine; see docs/cpu-backends.md), or vllm (GPU; docs/scale-out.md)"),
    max_batch_tokens: int = typer.Option(8192, help="token budget per forward batch", callback=checked(COUNT)),
    one_order: bool = typer.Option(False, "--one-order", help="score a single (seeded) order instead of both"),
    ratings: Optional[List[Path]] = typer.Option(None, help="held-out rated responses: per-attribute correlation "
                                                           "of the model's heads and of its reward"),
    seed: int = typer.Option(0, callback=checked(SEED)),
    exclude_overlap_with: Optional[List[Path]] = typer.Option(None, help="training file(s): drop (and count) the "
                                                              "evaluation rows whose prompt overlaps them (see `data overlap`)"),
):
    """Accuracy, per-subset/section scores, position consistency, calibration and length bias.
    Under `torchrun --nproc_per_node N` the processes share the scoring (same numbers; rank 0 writes)."""
    with sharded_scoring():
        if len(model) == 1:
            _evaluate(model[0], data, output, max_pairs, dtype, max_length, backend, max_batch_tokens, one_order,
                      ratings, seed, exclude_overlap_with)
            return
        from rewardkit.eval.compare import compare, difference_text, model_names, write_comparison

        evaluated = {}
        for name, path in zip(model_names(model), model):
            evaluated[name] = _evaluate(path, data, output / name, max_pairs, dtype, max_length, backend,
                                        max_batch_tokens, one_order, ratings, seed, exclude_overlap_with)
        if not is_writer():
            return
        comparison = compare({name: rows for name, (_, rows) in evaluated.items()}, seed=seed)
        write_comparison(output, comparison, {name: results for name, (results, _) in evaluated.items()})
        for name, entry in comparison["models"].items():
            out.print(f"{name} − {comparison['baseline']}: accuracy {difference_text(entry['overall'])}")
        out.print(f"→ {output}/comparison.md, comparison.json (each model's report in {output}/NAME/)")


def _evaluate(model, data, output, max_pairs, dtype, max_length, backend, max_batch_tokens, one_order, ratings, seed,
              exclude_overlap_with=None):
    from rewardkit.data import load_pairs
    from rewardkit.data.overlap import OverlapIndex
    from rewardkit.eval import evaluate_files, write_report
    from rewardkit.methods.load import load_reward_model

    exclude = OverlapIndex.from_files(exclude_overlap_with) if exclude_overlap_with else None
    scorer = load_reward_model(model, dtype=dtype, max_length=max_length, max_batch_tokens=max_batch_tokens,
                               backend=backend)
    total = sum(min(len(load_pairs(p).records), max_pairs or 10**9) for p in data)
    with _progress() as progress:
        bar = progress.add_task("scoring pairs", total=total)
        results, rows = evaluate_files(scorer, data, max_pairs=max_pairs, seed=seed, both_orders=not one_order,
                                       progress=lambda n: progress.advance(bar, n), exclude=exclude)
    if exclude is not None:
        per_file = "; ".join(f"{name}: {r['excluded_overlap']}" for name, r in results["per_file"].items())
        out.print(f"decontamination: {results['decontamination']['excluded']} rows dropped whose prompt overlaps "
                  f"{', '.join(map(str, exclude_overlap_with))} ({per_file})")
    if ratings:
        if not scorer.pointwise:
            raise typer.BadParameter("--ratings needs a scalar (pointwise) reward model, not a pairwise judge")
        from rewardkit.eval import evaluate_ratings

        results["ratings"] = evaluate_ratings(scorer, [str(r) for r in ratings])
    if not is_writer():
        return results, rows
    write_report(output, results, rows, model=str(model))
    from rewardkit.eval.intervals import describe

    table = Table("file", "pairs", "accuracy [95% interval]", "consistency", "ECE")
    for name, r in results["per_file"].items():
        table.add_row(name, str(r["num_pairs"]), describe(r["accuracy"], r.get("accuracy_ci95")),
                      "—" if r["position_consistency"] is None else f"{r['position_consistency']:.3f}", f"{r['ece']:.3f}")
    out.print(table)
    out.print(f"overall accuracy {describe(results['accuracy'], results.get('accuracy_ci95'))} on {results['num_pairs']} "
              f"pairs → {output}/results.json, report.md")
    return results, rows


@user_errors
def score_command(
    model: str = typer.Option("smollm2-135m", help="trained directory, built-in name or causal LM"),
    data: Path = typer.Option(..., help="pair file (labeled: chosen/rejected, or unlabeled: response_a/response_b)"),
    output: Path = typer.Option(..., help="JSONL file: one row per pair with P(first response better)",
                               callback=writable("file")),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
    max_length: Optional[int] = typer.Option(None, callback=checked(COUNT)),
    backend: str = typer.Option("eager", help="decoder pass: eager (PyTorch), onnx, openvino, openvino-int8, int8, "
                                              "compile, auto (by machine; see docs/cpu-backends.md), or vllm (GPU; docs/scale-out.md)"),
):
    """Score every pair of a file: P(chosen/response_a is better), both orders averaged.
    Under `torchrun --nproc_per_node N` the processes share the scoring (same numbers; rank 0 writes)."""
    with sharded_scoring():
        _score(model, data, output, dtype, max_length, backend)


def _score(model, data, output, dtype, max_length, backend):
    from rewardkit.data import load_response_pairs
    from rewardkit.methods.load import load_reward_model
    from rewardkit.types import prompt_to_json

    scorer = load_reward_model(model, dtype=dtype, max_length=max_length, backend=backend)
    pairs = load_response_pairs(data, seed=0).records if _unlabeled(data) else None
    labeled = pairs is None
    if labeled:
        from rewardkit.data import load_pairs

        records = load_pairs(data).records
        firsts, seconds = [p.chosen for p in records], [p.rejected for p in records]
    else:
        records = pairs
        firsts, seconds = [p.response_a for p in records], [p.response_b for p in records]
    details = scorer.compare_details([r.prompt for r in records], firsts, seconds)
    if not is_writer():
        return
    with replacing(output) as handle:
        for record, first, second, d in zip(records, firsts, seconds, details):
            handle.write(json.dumps({"prompt": prompt_to_json(record.prompt), "response_a": first, "response_b": second,
                                     "p_a_better": d.probability, "p_ab": d.p_ab, "p_ba": d.p_ba,
                                     **({"label": "a"} if labeled else {})}, ensure_ascii=False) + "\n")
    out.print(f"wrote {len(records)} scores to {output}")


def _unlabeled(path: Path) -> bool:
    from rewardkit.data.formats import detect_format
    from rewardkit.data.readers import iter_raw_rows

    for row in iter_raw_rows(path):
        return detect_format(row.data) == "unlabeled"
    return False


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("score")(score_command)
