"""`rewardkit pretrain|finetune|train-bt`: flags → TrainConfig → the shared training loop."""



import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rewardkit.cli.common import console, out, user_errors


def _run(task: str, options: dict) -> None:
    from rewardkit.training import load_config, train

    config_file = options.pop("config")
    options = {k: ([str(x) for x in v] if isinstance(v, list) else str(v) if isinstance(v, Path) else v)
               for k, v in options.items()}
    config = load_config(config_file, options, task)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn())
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun/accelerate only rank 0 reports
    with Progress(*columns, console=console, transient=False, disable=not main_rank) as progress:
        bar = progress.add_task(task, total=None, info="loading")

        def on_event(kind: str, data: dict) -> None:
            if not main_rank:
                return
            if kind == "data":
                console.print(f"{data['records']} records → {data['features']} examples; truncated {data['truncated']} rows")
            elif kind == "cache":
                progress.update(bar, total=data["total"], completed=data["rows"], info="running the frozen blocks once")
            elif kind == "cached":
                console.print(f"frozen blocks' output cached: {data['megabytes']:.0f} MB in {data['seconds']:.0f} s")
            elif kind == "resume":
                console.print(f"resuming from {data['checkpoint']} (step {data['step']})")
            elif kind == "eval":
                console.print("before training: " + ", ".join(f"{k}={v:.3f}" for k, v in data.items() if k != "step"))
            elif kind == "start":
                progress.update(bar, total=data["total_steps"], completed=data["step"], info="")
            elif kind == "step":
                extra = " ".join(f"{k}={data[k]:.3f}" for k in ("accuracy", "eval_accuracy") if k in data)
                progress.update(bar, completed=data["step"],
                                info=f"loss={data['loss']:.4f} lr={data['lr']:.2e} tok/s={data['tokens_per_s']:.0f} {extra}")

        summary = train(config, on_event=on_event)
    if main_rank:
        out.print(f"saved to {config.output}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                             for k, v in summary.items()))


def common_options(
    model: Optional[str] = typer.Option(None, help="base model: built-in name, local dir or hub id [default: smollm2-135m]"),
    data: Optional[List[Path]] = typer.Option(None, help="training file(s); repeat the flag for more"),
    output: Optional[Path] = typer.Option(None, help="output directory [default: runs/out]"),
    config: Optional[Path] = typer.Option(None, help="YAML file with any of these options"),
    eval_data: Optional[List[Path]] = typer.Option(None, help="held-out pair file(s) for eval accuracy"),
    max_steps: Optional[int] = typer.Option(None), epochs: Optional[float] = typer.Option(None),
    lr: Optional[float] = typer.Option(None), batch_size: Optional[int] = typer.Option(None),
    grad_accum: Optional[int] = typer.Option(None), max_length: Optional[int] = typer.Option(None),
    max_pairs: Optional[int] = typer.Option(None, help="use only N pairs (seeded sample)"),
    lora: Optional[bool] = typer.Option(None, "--lora/--no-lora", help="train LoRA adapters (peft)"),
    lora_rank: Optional[int] = typer.Option(None), lora_alpha: Optional[int] = typer.Option(None),
    lora_targets: Optional[List[str]] = typer.Option(None, help="module names for LoRA"),
    merge_lora: Optional[bool] = typer.Option(None, "--merge-lora/--no-merge-lora"),
    train_layers: Optional[int] = typer.Option(None, help="partial fine-tuning: only the top N blocks"),
    cache_frozen: Optional[bool] = typer.Option(
        None, "--cache-frozen/--no-cache-frozen",
        help="with --train-layers: run the frozen blocks once per row and reuse their output (several x faster epochs)"),
    template: Optional[Path] = typer.Option(None, help="template file (YAML/JSON/text)"),
    eval_every: Optional[int] = typer.Option(None), save_every: Optional[int] = typer.Option(None),
    seed: Optional[int] = typer.Option(None), resume: Optional[bool] = typer.Option(None, "--resume/--no-resume"),
    dtype: Optional[str] = typer.Option(None, help="fp32 (default) or bf16 weights"),
    mixed_precision: Optional[str] = typer.Option(None, help="auto (bf16 autocast where fast), no, bf16"),
    gradient_checkpointing: Optional[bool] = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    freeze_embeddings: Optional[bool] = typer.Option(None, "--freeze-embeddings/--train-embeddings"),
) -> dict:
    """Flags shared by the three training commands (their signature is reused below)."""


def register(app: typer.Typer) -> None:
    import inspect

    base = inspect.signature(common_options).parameters

    def make(task: str, extra: dict, doc: str):
        def command(**kwargs):
            _run(task, kwargs)

        params = list(base.values()) + [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v[0], annotation=v[1])
                                        for k, v in extra.items()]
        command.__signature__ = inspect.Signature(params)
        command.__doc__ = doc
        return user_errors(command)

    app.command("pretrain")(make("pretrain", {}, "GRAM stage 1: learn to generate response pairs (LM loss on responses)."))
    app.command("finetune")(make("finetune", {
        "label_smoothing": (typer.Option(None, help="label smoothing ε [default: 0.1]"), Optional[float]),
        "both_orders": (typer.Option(None, "--both-orders/--one-order"), Optional[bool]),
    }, "GRAM stage 2: judge fine-tuning on labeled pairs (verdict token, label smoothing)."))
    app.command("train-bt")(make("bt", {
        "use_margin": (typer.Option(None, "--use-margin/--no-margin"), Optional[bool]),
        "center_rewards": (typer.Option(None, help="reward-centring coefficient"), Optional[float]),
    }, "Bradley–Terry baseline: value head on the last token."))
