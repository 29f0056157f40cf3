"""`rewardkit export`: a trained model in a standard format other tools load."""

from pathlib import Path

import typer

from rewardkit.cli.common import out, user_errors
from rewardkit.cli.options import writable


@user_errors
def export_command(
    model: str = typer.Argument(..., help="a trained judge directory (or any causal LM used as a zero-shot judge)"),
    output: Path = typer.Argument(..., help="directory to write", callback=writable("directory")),
    to: str = typer.Option("seq-cls", "--to", help="seq-cls: a one-logit …ForSequenceClassification"),
):
    """Export a pairwise judge as a standard sequence classifier (vLLM classify/score, TRL, OpenRLHF)."""
    from rewardkit import load_reward_model
    from rewardkit.errors import ConfigError
    from rewardkit.methods.judge.export import export_sequence_classifier

    if to != "seq-cls":
        raise ConfigError(f"--to {to!r}: only 'seq-cls' is supported")
    judge = load_reward_model(model, dtype="fp32")
    if judge.pointwise or not hasattr(judge, "label_ids"):
        raise ConfigError(f"{model}: a {judge.kind} model is not a pairwise judge; only judges export to seq-cls")
    out.print(f"wrote {export_sequence_classifier(judge, output)} (logit > 0: the first answer is better)")
