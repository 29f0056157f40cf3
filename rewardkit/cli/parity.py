"""`rewardkit parity`: the same rows through every scoring path, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from rewardkit.cli.common import console, out, user_errors
from rewardkit.cli.options import checked, writable
from rewardkit.domains import NON_NEGATIVE

EXIT_MISMATCH = 1


@user_errors
def parity_command(
    model: str = typer.Argument(..., help="a saved model directory (or any model load_reward_model takes)"),
    data: Path = typer.Option(..., help="golden labeled pairs to score through every path"),
    tolerance: float = typer.Option(1e-4, help="largest |Δ| in P(chosen better) a path may show against the reference",
                                    callback=checked(NON_NEGATIVE)),
    backend: Optional[List[str]] = typer.Option(None, help="CPU backends to include (default: the installed exact "
                                                           "ones, onnx and openvino); repeat the flag for more"),
    output: Optional[Path] = typer.Option(None, help="also write the report as JSON here", callback=writable("file")),
):
    """Scores --data through the training-time forward, load_reward_model at batch sizes 1, 8
    and 32, the HTTP server, the plain transformers load with right and left padding, the CPU
    backends and vLLM; exits 1 when a path is further than --tolerance from the reference."""
    from rewardkit.files import write_text
    from rewardkit.parity import run_parity

    report = run_parity(model, data, backends=tuple(backend) if backend else None, tolerance=tolerance,
                        progress=lambda name: console.print(f"[dim]scoring: {name}[/]", highlight=False))
    table = Table("path", "max |Δ|", "Kendall τ", "accuracy change", "within tolerance",
                  title=f"{report['rows']} rows against {report['reference']} (accuracy {report['reference_accuracy']:.3f})")
    for name, entry in report["paths"].items():
        if "skipped" in entry:
            table.add_row(name, "—", "—", "—", f"not applicable: {entry['skipped']}")
            continue
        tau = "—" if entry["kendall_tau"] is None else f"{entry['kendall_tau']:.4f}"
        table.add_row(name, f"{entry['max_abs_delta']:.2e}", tau, f"{entry['accuracy_change']:+.3f}",
                      "yes" if entry["passed"] else "[bold red]NO[/]")
    out.print(table)
    if output:
        write_text(output, json.dumps(report, indent=2))
    if not report["passed"]:
        failed = [n for n, e in report["paths"].items() if e.get("passed") is False]
        console.print(f"[bold red]parity failed:[/] {', '.join(failed)} further than {tolerance:g} from the reference")
        raise typer.Exit(EXIT_MISMATCH)
    out.print(f"parity holds on every path that applies (|Δ| ≤ {tolerance:g})")


def register(app: typer.Typer) -> None:
    app.command("parity")(parity_command)
