"""One process of a multi-process TRL GRPOTrainer run (TRL 1.16) with rewardkit's reward
function: argv = model directory, output directory, mode. Each process writes, per reward call,
the prompts, completions and rewards it saw (rank{R}.jsonl), for tests/test_rl_clients.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit import load_reward_model
    from rewardkit.integrations import JudgeRewardFunction

    model, output, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    rank = int(os.environ.get("RANK", "0"))
    log = (output / f"rank{rank}.jsonl").open("w")

    class Recording(JudgeRewardFunction):
        def __call__(self, prompts, completions, **columns):
            rewards = super().__call__(prompts, completions, **columns)
            log.write(json.dumps({"prompts": prompts, "completions": completions, "rewards": rewards}) + "\n")
            log.flush()
            return rewards

    data = datasets.Dataset.from_list([{"prompt": f"question {i}?", "reference": "good answer"} for i in range(4)])
    args = GRPOConfig(output_dir=str(output / "out"), per_device_train_batch_size=2, num_generations=4,
                      max_completion_length=6, max_steps=2, report_to=[], logging_steps=1, use_cpu=True,
                      save_strategy="no", bf16=False, seed=0)
    trainer = GRPOTrainer(model=model, args=args, train_dataset=data,
                          reward_funcs=[Recording(load_reward_model(model, dtype="fp32"), mode=mode)])
    trainer.train()
    log.close()
    import torch.distributed as dist

    if dist.is_initialized():  # a clean exit: a process group left to interpreter shutdown may abort
        dist.barrier()
        dist.destroy_process_group()
    # Leave without freeing the trainer: its DDP reducer's destructor joins a gloo worker thread
    # that waits for the GIL the destructor holds (a deadlock seen on a native-bf16 machine, 2026-12-06)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
