"""One process of a torchrun job, for the scale-out tests.

Training: JSON loop options in, `train_method` run; with "kill_rank_at" {"rank": R, "step": S}
process R kills itself with SIGKILL when step S is reported (a crash no Python code can catch).
Scoring: {"score": {"model", "pairs", "report"}} compares the pairs inside `sharded_scoring()`
and writes, per rank, the probabilities and how many rows this process ran itself."""

from __future__ import annotations

import json
import os
import signal
import sys

from rewardkit import LoopConfig, train_method


def score(job: dict) -> None:
    from pathlib import Path

    from rewardkit import load_reward_model
    from rewardkit.scoring.distributed import sharded_scoring

    rows = [json.loads(line) for line in Path(job["pairs"]).read_text().splitlines()]
    with sharded_scoring():
        scorer = load_reward_model(job["model"], dtype="fp32")
        p = scorer.compare([r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows])
    report = {"p": p, "rows_run_here": scorer.engine.stats["rows"]}
    Path(job["report"].format(rank=os.environ.get("RANK", "0"))).write_text(json.dumps(report))


def main() -> None:
    options = json.loads(sys.argv[1])
    if "score" in options:
        return score(options["score"])
    method, kill = options.pop("method"), options.pop("kill_rank_at", None)
    rank = int(os.environ.get("RANK", "0"))

    def on_event(kind: str, data: dict) -> None:
        if kill and kind == "step" and data["step"] == kill["step"] and rank == kill["rank"]:
            os.kill(os.getpid(), signal.SIGKILL)

    train_method(method, LoopConfig(**options), on_event=on_event)
    import torch.distributed as dist

    if dist.is_initialized():  # as the CLI does (cli/main.py close_process_group): no gloo group left to shutdown
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
