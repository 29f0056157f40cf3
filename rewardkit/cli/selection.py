"""`rewardkit embed`, `rewardkit select` and `rewardkit audit`: preference pairs as vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from rewardkit.cli.common import DTYPE_HELP, out, refuse_same_files, user_errors
from rewardkit.cli.options import checked, writable
from rewardkit.domains import CONFIDENCE, COUNT, SEED
from rewardkit.files import replacing, write_text


def _records(path: Path, what: str):
    from rewardkit.data import load_pairs, load_response_pairs
    from rewardkit.errors import ConfigError

    try:
        records = load_pairs(path).records
    except Exception:  # noqa: BLE001 - an unlabeled file is fine here: read it as such
        records = load_response_pairs(path).records
    if not records:
        raise ConfigError(f"{what} {path}: no pairs")
    return records


def _embed(model: str, records, max_length, dtype: str = "auto"):
    from rewardkit.methods.load import load_reward_model
    from rewardkit.scoring.pair_embeddings import embed_pairs

    scorer = load_reward_model(model, max_length=max_length, dtype=dtype)
    return scorer, embed_pairs(scorer, records, model=model)


@user_errors
def embed_command(
    model: str = typer.Option("smollm2-135m", help="judge (causal LM or trained judge) or Bradley–Terry directory"),
    data: Path = typer.Option(..., help="pair file (labeled or unlabeled)"),
    output: Path = typer.Option(..., help="Parquet file: row, id, source, subset, embedding", callback=writable("file")),
    max_length: Optional[int] = typer.Option(None, help="row limit in tokens [default: the model's own]", callback=checked(COUNT)),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
):
    """One antisymmetric vector per pair (swapping the responses negates it), rows in input order.
    Under `torchrun --nproc_per_node N` the processes share the passes (same vectors; rank 0 writes)."""
    from rewardkit.scoring.distributed import is_writer, sharded_scoring
    from rewardkit.selection.embeddings import write_embeddings

    records = _records(data, "--data")
    with sharded_scoring():
        _, embeddings = _embed(model, records, max_length, dtype)
    if not is_writer():
        return
    write_embeddings(output, embeddings)
    out.print(f"{len(embeddings)} pairs × {embeddings.vectors.shape[1]} dims → {output}")


@user_errors
def select_command(
    pool: Path = typer.Option(..., help="the pool's pair file"),
    budget: int = typer.Option(..., help="how many pool pairs to select", callback=checked(COUNT)),
    output: Path = typer.Option(..., help="JSONL: the selected pairs, every original field plus selection_score",
                               callback=writable("file")),
    target: Optional[Path] = typer.Option(None, help="pairs of the domain to select for (ot, nearest)"),
    strategy: str = typer.Option("ot", help="ot | nearest | margin | random"),
    model: Optional[str] = typer.Option(None, help="the model that embeds both files (and gives margins)"),
    pool_embeddings: Optional[Path] = typer.Option(None, help="precomputed: `rewardkit embed` output for --pool"),
    target_embeddings: Optional[Path] = typer.Option(None, help="precomputed: `rewardkit embed` output for --target"),
    max_length: Optional[int] = typer.Option(None, callback=checked(COUNT)),
    seed: int = typer.Option(0, callback=checked(SEED)),
):
    """Select --budget pool pairs for a target domain; report.md + a 2-D map beside --output."""
    from rewardkit.errors import ConfigError
    from rewardkit.selection.strategies import STRATEGIES, select

    if strategy not in STRATEGIES:
        raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    for source in ({"pool": pool}, {"target": target}):  # the two inputs may be one file; no output may be either
        refuse_same_files(**source, output=output, report=output.with_suffix(".md"), map=output.with_suffix(".png"))
    pool_records = _records(pool, "--pool")
    target_records = _records(target, "--target") if target else None
    if target is not None and target != pool:  # selecting for a domain from its own rows is no contamination
        from rewardkit.data.overlap import warn_if_overlapping

        warn_if_overlapping([pool], [target], "--pool")
    if budget > len(pool_records) or budget < 1:
        raise ConfigError(f"--budget {budget}: must be between 1 and the pool's {len(pool_records)} pairs")
    if strategy in ("ot", "nearest") and target_records is None:
        raise ConfigError(f"--strategy {strategy} needs --target")
    if strategy == "margin" and not model:
        raise ConfigError("--strategy margin needs --model (its verdicts give the margins)")
    scorer = None
    if model:
        from rewardkit.methods.load import load_reward_model

        scorer = load_reward_model(model, max_length=max_length)
    pool_vectors = target_vectors = None
    if strategy in ("ot", "nearest") or scorer is not None:
        pool_vectors, target_vectors = _vectors(scorer, model, pool_records, target_records, pool_embeddings,
                                                target_embeddings)
    margins = _margins(scorer, pool_records) if strategy == "margin" else None
    chosen, scores = select(pool_vectors if pool_vectors is not None else _placeholder(len(pool_records)),
                            target_vectors, budget, strategy, seed=seed, margins=margins)
    _write_selection(output, pool_records, chosen, scores)
    _write_report(output, strategy, budget, pool_records, chosen, pool_vectors, target_vectors)
    out.print(f"{budget} pairs → {output}; spread in {output.with_suffix('.md')}")


def _vectors(scorer, model, pool_records, target_records, pool_file, target_file):
    """(pool vectors, target vectors or None): precomputed files where given, else embedded by
    the model; both must come from the same model."""
    from rewardkit.errors import ConfigError
    from rewardkit.selection.embeddings import check_same_model, embed_pairs, read_embeddings

    def embeddings(records, file, flag):
        if file:
            return read_embeddings(file)
        if scorer is None:
            raise ConfigError(f"--model or {flag}: the pairs need embeddings")
        return embed_pairs(scorer, records, model=model)

    pool_emb = embeddings(pool_records, pool_file, "--pool-embeddings")
    if len(pool_emb) != len(pool_records):
        raise ConfigError(f"{pool_file}: {len(pool_emb)} rows, but --pool has {len(pool_records)} pairs")
    if target_records is None:
        return pool_emb.vectors, None
    target_emb = embeddings(target_records, target_file, "--target-embeddings")
    check_same_model(pool_emb, target_emb, "--pool embeddings", "--target embeddings")
    return pool_emb.vectors, target_emb.vectors


def _margins(scorer, records):
    """The model's log-odds that each pair's first response is better."""
    import numpy as np

    from rewardkit.selection.embeddings import sides

    p = np.clip(np.array(scorer.compare(*map(list, zip(*[sides(r) for r in records])))), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _placeholder(count: int):
    import numpy as np

    return np.zeros((count, 1))  # margin and random need no vectors


def _write_selection(output: Path, records, chosen, scores) -> None:
    from rewardkit.data.load import record_to_row

    with replacing(output) as handle:
        for rank, index in enumerate(chosen):
            row = {**record_to_row(records[index]), "selection_score": float(scores[index]),
                   "selection_rank": rank, "pool_row": int(index)}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_report(output: Path, strategy, budget, records, chosen, pool_vectors, target_vectors) -> None:
    from rewardkit.selection.report import projection_plot, spread_table

    table = spread_table([r.source for r in records], [r.subset for r in records], chosen)
    report = [f"# Selection: {strategy}, {budget} of {len(records)} pool pairs", "", table, ""]
    if pool_vectors is not None:
        plot = output.with_suffix(".png")
        projection_plot(pool_vectors, target_vectors, chosen, plot, f"{strategy}: {budget} of {len(records)}")
        report += [f"![map]({plot.name})", ""]
    write_text(output.with_suffix(".md"), "\n".join(report))


@user_errors
def audit_command(
    model: str = typer.Option("smollm2-135m", help="the judge or reward model that checks the labels"),
    data: Path = typer.Option(..., help="labeled pair file"),
    output: Path = typer.Option(..., help="JSONL for review: the flagged pairs, most confident first",
                               callback=writable("file")),
    confidence: float = typer.Option(0.8, help="flag when P(chosen better) ≤ 1 − this", callback=checked(CONFIDENCE)),
    max_length: Optional[int] = typer.Option(None, callback=checked(COUNT)),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
):
    """Pairs where a confident model disagrees with the label, with the evidence; nothing is dropped.
    Under `torchrun --nproc_per_node N` the processes share the scoring (same flags; rank 0 writes)."""
    from rewardkit.data import load_pairs
    from rewardkit.errors import ConfigError
    from rewardkit.methods.load import load_reward_model
    from rewardkit.scoring.distributed import is_writer, sharded_scoring
    from rewardkit.selection.audit import audit_pairs

    if not 0.5 < confidence < 1:
        raise ConfigError(f"--confidence must be in (0.5, 1), got {confidence}")
    pairs = load_pairs(data).records
    with sharded_scoring():
        rows = audit_pairs(load_reward_model(model, max_length=max_length, dtype=dtype), pairs, confidence=confidence)
    if not is_writer():
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out.print(f"{len(rows)} of {len(pairs)} pairs flagged for review → {output} ({data} is unchanged)")


def register(app: typer.Typer) -> None:
    app.command("embed")(embed_command)
    app.command("select")(select_command)
    app.command("audit")(audit_command)
