"""`rewardkit demo`: the main job on the embedded default model."""

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rewardkit.cli.common import console, out, user_errors
from rewardkit.cli.options import checked, writable
from rewardkit.domains import SEED


@user_errors
def demo_command(
    output: Path = typer.Option(Path("runs/demo"), help="where models, reports and results.json go",
                               callback=writable("directory")),
    quick: bool = typer.Option(False, "--quick", help="smaller slices and fewer steps (a few minutes)"),
    model: str = typer.Option("smollm2-135m", help="backbone (built-in name, local dir or hub id)"),
    seed: int = typer.Option(0, callback=checked(SEED)),
    fit_time: bool = typer.Option(True, "--fit-time/--nominal-plan",
                                  help="measure this machine at start-up and train on fewer pairs if the plan would "
                                       "overrun its limit (4 min quick, 15 min full)"),
):
    """Zero-shot judge vs GRAM (pre-training + judge fine-tuning) vs Bradley–Terry, on a held-out slice."""
    from rewardkit.models import resolve_model_path
    from rewardkit.recipes.demo import TABLE_HEADER, run_demo, table_rows, work_units
    from rewardkit.recipes.demo_plan import choose_plan

    plan, sizing = choose_plan(quick, resolve_model_path(model), fit=fit_time)
    if sizing.get("shrunk"):
        console.print(f"this machine measured {sizing['probe_tokens_per_s']:.0f} tokens/s: training on "
                      f"{plan.train_pairs} pairs instead of {sizing['nominal_train_pairs']} to hold the "
                      f"{sizing['limit_s']:.0f} s limit (--nominal-plan runs the full plan)")
    cached = {}  # stage -> rows cached so far
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("demo", total=work_units(plan), info="starting")

        def on_event(kind: str, data: dict) -> None:
            if kind == "stage":
                progress.update(bar, description=data["name"], info=data["text"])
            elif kind == "cache":
                rows = data["rows"] // 2 if data["stage"] == "bt" else data["rows"]
                progress.advance(bar, rows - cached.get(data["stage"], 0))
                cached[data["stage"]] = rows
                progress.update(bar, info=f"{data['stage']}: running the frozen blocks once ({data['rows']}/{data['total']})")
            elif kind == "step":  # rows of this step (token-budget batches vary); a BT row is half a unit
                progress.advance(bar, data["rows"] // 2 if data["stage"] == "bt" else data["rows"])
                progress.update(bar, info=f"{data['stage']} step {data['step']} loss {data['loss']:.3f}")
            elif kind == "scored":
                progress.advance(bar, 2 * data["pairs"])

        results = run_demo(output, quick=quick, model=model, seed=seed, plan=plan, sizing=sizing, on_event=on_event)
    table = Table(*TABLE_HEADER, title="held-out slice (UltraFeedback eval split) and out-of-domain (LLMBar Natural)")
    for row in table_rows(results):
        table.add_row(*row)
    out.print(table)
    from rewardkit.eval.compare import difference_text

    for name, held in results["paired"]["heldout"].items():
        out.print(f"{name}: held-out {difference_text(held)}; LLMBar Natural {difference_text(results['paired']['ood'][name])}")
    example = results["best_of_n_example"]
    out.print(f"best-of-{len(example['candidates'])} with the trained judge: picked candidate {example['best']} "
              f"(the human-preferred answer is {example['chosen_index']}); "
              f"rewards vs the rejected answer: {', '.join(f'{r:+.2f}' for r in example['reward_vs_rejected_logodds'])}")
    out.print(f"models in {output}/gram and {output}/bt; report {output}/report.md; results {output}/results.json")
