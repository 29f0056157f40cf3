"""The `rewardkit` command: a thin layer that parses, calls the library and renders."""

from __future__ import annotations

import typer

from rewardkit.cli import adapt, data, demo, evaluate, export, models, parity, rl, selection, serve, train, unlabeled
from rewardkit.cli.common import show_our_warnings_as_one_line

app = typer.Typer(help="Build, evaluate and serve generative and Bradley-Terry reward models.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


def close_process_group() -> None:
    """Under torchrun, leave through destroy_process_group: a gloo group left to interpreter
    shutdown can abort the process ("terminate called without an active exception", exit −6)
    after a run that finished, and torchrun then reports the run as failed."""
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", help="show library logs and download/loading bars")):
    """rewardkit: generative (GRAM) and Bradley–Terry reward models."""
    import atexit
    import os
    import warnings

    show_our_warnings_as_one_line()
    atexit.register(close_process_group)
    if not verbose:  # our own progress bars say what is happening; library chatter hides them
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="torch")
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass


app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
train.register(app)
evaluate.register(app)
parity.register(app)
app.command("serve")(serve.serve_command)
rl.register(app)
unlabeled.register(app)
adapt.register(app)
selection.register(app)
app.command("demo")(demo.demo_command)
app.command("export")(export.export_command)


if __name__ == "__main__":
    app()
