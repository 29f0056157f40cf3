"""`rewardkit models pull|path|list|average`."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer
from rich.table import Table

from rewardkit.cli.common import console, out, user_errors
from rewardkit.cli.options import checked, writable
from rewardkit.domains import PROBABILITY

app = typer.Typer(help="Fetch and locate backbone models; average two of them.", no_args_is_help=True)


@app.command()
@user_errors
def pull(name: str = typer.Argument(..., help="built-in model name, e.g. smollm2-135m"),
         force: bool = typer.Option(False, help="fetch and convert again even if cached")):
    """Download a built-in model and convert it to a Hugging Face directory in the cache."""
    from rewardkit.models import registry

    path = registry.pull(name, force=force, progress=lambda m: console.print(f"[dim]{m}[/]"))
    out.print(str(path))


@app.command()
@user_errors
def path(name: str = typer.Argument(..., help="built-in model name (pulled if missing), local dir or hub id")):
    """Print the local directory of a model, pulling a built-in one first if needed."""
    from rewardkit.models import resolve_model_path

    out.print(resolve_model_path(name), soft_wrap=True)


@app.command("list")
def list_models():
    """Built-in models and whether they are in the cache."""
    from rewardkit.models import registry

    table = Table("name", "pulled", "description")
    for name, spec in registry.BUILTIN_MODELS.items():
        table.add_row(name, "yes" if registry.is_pulled(name) else "no", spec.description)
    out.print(table)
    out.print(f"cache: {registry.cache_dir()} (set ${registry.CACHE_ENV} to move it)")


@app.command()
@user_errors
def average(model: Path = typer.Option(..., help="the adapted model directory (its files and kind are kept)"),
            base: str = typer.Option(..., help="the model it was adapted from: directory, built-in name or hub id"),
            alpha: float = typer.Option(..., help="the adapted model's share A: A · adapted + (1 − A) · base; "
                                                   "1 = the adapted model, 0 = the base", callback=checked(PROBABILITY)),
            layer_alpha: List[str] = typer.Option([], help="REGEX=A: another share for the tensors whose names "
                                                           "match (first match wins; repeat the flag)"),
            output: Path = typer.Option(..., help="new directory for the averaged model (refused if it exists)",
                                        callback=writable("directory"))):
    """Weight-average an adapted model with its base into a new directory, without training
    (Lin et al. 2023): try several α on one adapted model; `rewardkit adapt --alpha` does the
    same to the model it trains."""
    from rewardkit.models import resolve_model_path
    from rewardkit.models.averaging import average_into, parse_layer_alphas

    layer_alphas = parse_layer_alphas(layer_alpha)  # a malformed one fails before a model is read
    report = average_into(model, resolve_model_path(base), output, alpha, layer_alphas)
    shares = ", ".join(f"{k} × {n}" for k, n in sorted(report["alpha_counts"].items()))
    out.print(f"{output}: {report['tensors']} tensors averaged (α: {shares}), "
              f"{len(report['kept_from_adapted'])} kept from the adapted model; report in {output}/averaging.json")
