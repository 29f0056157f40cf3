"""`rewardkit best-of-n` and `rewardkit label`."""

import json
from pathlib import Path

import typer
from rich.progress import Progress

from rewardkit.cli.common import DTYPE_HELP, console, out, user_errors
from rewardkit.cli.options import checked, writable
from rewardkit.domains import COUNT, NON_NEGATIVE, SEED
from rewardkit.files import write_text


@user_errors
def best_of_n_command(
    policy: str = typer.Option(..., help="causal LM that generates the candidates (name, dir or hub id)"),
    model: str = typer.Option(..., help="reward model: trained directory, built-in name or causal LM"),
    prompts: Path = typer.Option(..., help="JSONL with 'prompt', or .txt with one prompt per line"),
    n: int = typer.Option(8, "-n", help="candidates per prompt", callback=checked(COUNT)),
    strategy: str = typer.Option("knockout", help="linear, knockout, round_robin or reference"),
    output: Path = typer.Option(Path("best_of_n.jsonl"), help="JSONL: best response, all candidates and scores",
                               callback=writable("file")),
    max_new_tokens: int = typer.Option(128, callback=checked(COUNT)),
    temperature: float = typer.Option(0.8, callback=checked(NON_NEGATIVE)),
    seed: int = typer.Option(0, callback=checked(SEED)),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
):
    """Sample n responses per prompt from a policy and keep the one the reward model ranks best."""
    from rewardkit.methods.load import load_reward_model
    from rewardkit.models import load_backbone
    from rewardkit.ranking.best_of_n import best_of_n_row, read_prompts, sample_responses

    questions = read_prompts(prompts)
    policy_model, policy_tok = load_backbone(policy, dtype=dtype)
    scorer = load_reward_model(model, dtype=dtype)
    rows = []
    with Progress(console=console) as progress:
        bar = progress.add_task("best-of-n", total=len(questions))
        for i, question in enumerate(questions):
            candidates = sample_responses(policy_model, policy_tok, question, n, max_new_tokens=max_new_tokens,
                                          temperature=temperature, seed=seed + i)
            rows.append(best_of_n_row(question, candidates, scorer.rank(question, candidates, strategy=strategy)))
            progress.advance(bar)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out.print(f"wrote {len(rows)} best-of-{n} results to {output}")


@user_errors
def label_command(
    model: str = typer.Option(..., help="reward model: trained directory, built-in name or causal LM"),
    data: Path = typer.Option(..., help="JSONL rows {prompt, responses: [...]}"),
    output: Path = typer.Option(..., help="preference pairs (prompt/chosen/rejected + margin), ready for DPO",
                               callback=writable("file")),
    strategy: str = typer.Option("round_robin", help="ranking strategy"),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
):
    """Turn candidate sets into preference pairs: best vs worst, with the score gap as margin.
    Under `torchrun --nproc_per_node N` the processes share the scoring (same pairs; rank 0 writes)."""
    from rewardkit.data import write_pairs
    from rewardkit.methods.load import load_reward_model
    from rewardkit.ranking.best_of_n import label_pairs, read_candidates
    from rewardkit.scoring.distributed import is_writer, sharded_scoring

    sets = read_candidates(data)
    with sharded_scoring():
        scorer = load_reward_model(model, dtype=dtype)
        pairs = label_pairs(scorer, sets, strategy=strategy)
    if is_writer():
        write_pairs(output, pairs)
        out.print(f"wrote {len(pairs)} pairs to {output}")


def register(app: typer.Typer) -> None:
    app.command("best-of-n")(best_of_n_command)
    app.command("label")(label_command)
