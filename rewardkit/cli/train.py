"""`rewardkit train METHOD` and `rewardkit pretrain|finetune|train-bt`: flags (generated from
the shared loop options and the method's own config) → the shared training loop."""

import contextlib
import inspect
import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rewardkit.cli.common import console, out, user_errors
from rewardkit.cli.options import as_plain_values, checked, config_parameters
from rewardkit.domains import COUNT, POSITIVE

# the commands that existed before `rewardkit train METHOD`, with the method each runs
NAMED_COMMANDS = {
    "pretrain": ("pretrain", "GRAM stage 1: learn to generate response pairs (LM loss on responses)."),
    "finetune": ("judge", "GRAM stage 2: judge fine-tuning on labeled pairs (verdict token, label smoothing)."),
    "train-bt": ("bradley_terry", "Bradley–Terry baseline: value head on the last token."),
    "train-multi": ("multi_objective", "Multi-objective reward model (ArmoRM): attribute heads fitted on rated "
                                       "responses (--ratings), a gate trained on pairs (--pairs); --experts for "
                                       "category experts (DMoERM)."),
}


def _run(method_name: str, options: dict) -> None:
    from rewardkit.methods import get_method
    from rewardkit.methods.train import train_method
    from rewardkit.methods.train_config import configs_for

    method = get_method(method_name)
    config_file = options.pop("config")
    loop, method_options = configs_for(method, config_file, as_plain_values(options))
    with _reporting(method.name) as on_event:
        summary = train_method(method, loop, method_options, on_event=on_event)
    _print_summary(loop.output, summary)


@contextlib.contextmanager
def _reporting(name: str):
    """A progress bar and status lines for a training run's events; yields the event callback."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun/accelerate only rank 0 reports
    with Progress(*columns, console=console, transient=False, disable=not main_rank) as progress:
        bar = progress.add_task(name, total=None, info="loading")

        def on_event(kind: str, data: dict) -> None:
            if not main_rank:
                return
            if kind == "data":
                console.print(f"{data['records']} records → {data['features']} examples; truncated {data['truncated']} rows")
            elif kind == "cache":
                progress.update(bar, total=data["total"], completed=data["rows"], info="running the frozen blocks once")
            elif kind == "cached":
                console.print(f"frozen blocks' output cached: {data['megabytes']:.0f} MB in {data['seconds']:.0f} s")
            elif kind == "states":
                progress.update(bar, total=data["total"], completed=data["rows"],
                                info=f"final states of {data['part']} rows")
            elif kind == "stage":
                console.print(f"stage {data['stage']}: " + ", ".join(f"{k}={v}" for k, v in data.items() if k != "stage"))
            elif kind == "packing":
                console.print(f"packing: {data['mode']} ({data['reason']})")
            elif kind == "checkpoint_skipped":
                console.print(f"[yellow]skipping a damaged checkpoint:[/] {data['reason']}")
            elif kind == "resume":
                console.print(f"resuming from {data['checkpoint']} (step {data['step']})")
            elif kind == "eval":
                console.print("before training: " + ", ".join(f"{k}={v:.3f}" for k, v in data.items()
                                                              if isinstance(v, float)))
            elif kind == "start":
                progress.update(bar, total=data["total_steps"], completed=data["step"], info="")
            elif kind == "step":
                extra = " ".join(f"{k}={data[k]:.3f}" for k in ("accuracy", "eval_accuracy") if k in data)
                progress.update(bar, completed=data["step"],
                                info=f"loss={data['loss']:.4f} lr={data['lr']:.2e} tok/s={data['tokens_per_s']:.0f} {extra}")

        yield on_event


def _print_summary(output: str, summary: dict) -> None:
    if int(os.environ.get("RANK", "0")) == 0:
        out.print(f"saved to {output}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                      for k, v in summary.items() if isinstance(v, (int, float, str))))


def _gram_command():
    """`rewardkit gram`: the judge's flags, plus the unlabeled pairs of stage 1."""
    from rewardkit.methods import get_method
    from rewardkit.training import LoopConfig

    judge = get_method("judge")

    def command(**kwargs):
        from rewardkit.errors import ConfigError
        from rewardkit.methods.train_config import configs_for
        from rewardkit.recipes.gram import train_gram

        unlabeled, epochs, steps = kwargs.pop("unlabeled"), kwargs.pop("pretrain_epochs"), kwargs.pop("pretrain_steps")
        if not unlabeled:
            raise ConfigError("--unlabeled: give at least one file of unlabeled response pairs (GRAM stage 1)")
        loop, judge_options = configs_for(judge, kwargs.pop("config"), as_plain_values(kwargs))
        with _reporting("gram") as on_event:
            summary = train_gram(loop, judge_options, unlabeled=[str(u) for u in unlabeled], pretrain_epochs=epochs,
                                 pretrain_steps=steps, on_event=on_event)
        _print_summary(loop.output, summary["judge"])

    extra = [inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
                               default=typer.Option(None, help="YAML file with any of these options")),
             inspect.Parameter("unlabeled", inspect.Parameter.KEYWORD_ONLY, annotation=List[Path],
                               default=typer.Option([], help="stage 1: unlabeled response pairs (labeled files: labels "
                                                             "dropped); repeat the flag for more")),
             inspect.Parameter("pretrain_epochs", inspect.Parameter.KEYWORD_ONLY, annotation=float,
                               default=typer.Option(1.0, help="stage 1: passes over --unlabeled", callback=checked(POSITIVE))),
             inspect.Parameter("pretrain_steps", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[int],
                               default=typer.Option(None, help="stage 1: optimizer steps; overrides --pretrain-epochs",
                                                    callback=checked(COUNT)))]
    command.__signature__ = inspect.Signature(extra + config_parameters(LoopConfig, judge.Config))
    command.__doc__ = ("GRAM, both stages: pair-generation pre-training on --unlabeled into OUTPUT_stage1, then judge "
                       "fine-tuning on --data into --output, starting from stage 1.")
    return user_errors(command)


def _command(method_name: str, doc: str):
    from rewardkit.methods import get_method
    from rewardkit.training import LoopConfig

    method = get_method(method_name)

    def command(**kwargs):
        _run(method.name, kwargs)

    config = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
                               default=typer.Option(None, help="YAML file with any of these options"))
    command.__signature__ = inspect.Signature([config] + config_parameters(LoopConfig, method.Config))
    command.__doc__ = doc
    return user_errors(command)


def register(app: typer.Typer) -> None:
    from rewardkit.methods import get_method, method_names

    for name, (method_name, doc) in NAMED_COMMANDS.items():
        app.command(name)(_command(method_name, doc))
    app.command("gram")(_gram_command())
    group = typer.Typer(help="Train any registered method: `rewardkit train METHOD --data … --output …`.",
                        no_args_is_help=True)
    for method_name in method_names():
        doc = (get_method(method_name).__doc__ or "").strip() or f"Train the {method_name} method."
        group.command(method_name)(_command(method_name, doc))
    app.add_typer(group, name="train")
