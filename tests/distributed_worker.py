"""A training run as one process of a torchrun job, for the scale-out tests: JSON options in,
`train_method` run; with "kill_rank_at" {"rank": R, "step": S} process R kills itself with
SIGKILL when step S is reported (a crash no Python code can catch or clean up after)."""

from __future__ import annotations

import json
import os
import signal
import sys

from rewardkit import LoopConfig, train_method


def main() -> None:
    options = json.loads(sys.argv[1])
    method, kill = options.pop("method"), options.pop("kill_rank_at", None)
    rank = int(os.environ.get("RANK", "0"))

    def on_event(kind: str, data: dict) -> None:
        if kill and kind == "step" and data["step"] == kill["step"] and rank == kill["rank"]:
            os.kill(os.getpid(), signal.SIGKILL)

    train_method(method, LoopConfig(**options), on_event=on_event)


if __name__ == "__main__":
    main()
