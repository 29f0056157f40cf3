"""A real GRPO run on the CPU with TRL: SmolLM2-135M-Instruct as the policy, a trained rewardkit
judge as the reward (reference mode, the reference being the initial policy's greedy answer,
as GRAM does for RL), a few dozen steps on prompts from the training sources. Then the final
policy is compared with the initial one on held-out prompts by a *different* reward model (a
Bradley–Terry model): win rate and mean length, whichever way it comes out.

    python bench/grpo.py --judge runs/demo/gram --evaluator runs/demo/bt [--steps 24] [--output runs/grpo]

(`bash scripts/demo.sh` trains both models.)
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from common import SHARED_DATA, hardware


def prompts(split: str, count: int, seed: int) -> list[str]:
    from rewardkit.data import load_pairs
    from rewardkit.types import prompt_to_text

    pairs = [p for p in load_pairs(SHARED_DATA / "ultrafeedback_binarized_subset.jsonl").records if p.subset == split]
    random.Random(seed).shuffle(pairs)
    texts = list(dict.fromkeys(prompt_to_text(p.prompt) for p in pairs))
    return [t for t in texts if len(t) < 600][:count]


def greedy_answers(model_path: str, questions: list[str], max_new_tokens: int) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    answers = []
    for start in range(0, len(questions), 8):
        chats = [[{"role": "user", "content": q}] for q in questions[start:start + 8]]
        batch = tokenizer.apply_chat_template(chats, add_generation_prompt=True, return_tensors="pt", padding=True,
                                              return_dict=True)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        answers += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return [a.strip() for a in answers]


def main() -> None:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit import load_reward_model
    from rewardkit.integrations import JudgeRewardFunction
    from rewardkit.models import resolve_model_path

    parser = argparse.ArgumentParser()
    parser.add_argument("--policy", default="smollm2-135m")
    parser.add_argument("--judge", required=True, help="the reward: a trained judge directory")
    parser.add_argument("--evaluator", required=True, help="a different reward model for the final comparison")
    parser.add_argument("--train-prompts", type=int, default=48)
    parser.add_argument("--eval-prompts", type=int, default=32)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8, help="completions per step (a multiple of --num-generations)")
    parser.add_argument("--max-completion", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/grpo")
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    policy = resolve_model_path(args.policy)
    train_q, eval_q = prompts("train", args.train_prompts, args.seed), prompts("eval", args.eval_prompts, args.seed)
    references = greedy_answers(policy, train_q, args.max_completion)
    data = datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": q}], "reference": r}
                                       for q, r in zip(train_q, references)])
    judge = load_reward_model(args.judge, dtype="fp32", max_length=512)
    config = GRPOConfig(output_dir=str(out / "policy"), per_device_train_batch_size=args.batch_size,
                        num_generations=args.num_generations, max_completion_length=args.max_completion,
                        max_steps=args.steps, learning_rate=args.lr, report_to=[], logging_steps=1, use_cpu=True,
                        save_strategy="no", bf16=False, seed=args.seed)
    trainer = GRPOTrainer(model=policy, args=config, train_dataset=data,
                          reward_funcs=[JudgeRewardFunction(judge, mode="reference")])
    trainer.train()
    trainer.save_model(str(out / "policy"))
    curve = [(h["step"], h["rewards/rewardkit_reference/mean"]) for h in trainer.state.log_history
             if "rewards/rewardkit_reference/mean" in h]
    train_seconds = time.perf_counter() - started
    before, after = greedy_answers(policy, eval_q, args.max_completion), greedy_answers(str(out / "policy"), eval_q,
                                                                                        args.max_completion)
    evaluator = load_reward_model(args.evaluator, dtype="fp32")
    p_after = evaluator.compare(eval_q, after, before)
    wins = sum(p > 0.5 for p in p_after) / len(p_after)
    unchanged = sum(a == b for a, b in zip(after, before))  # greedy answers the run did not change
    results = {"hardware": hardware(), "settings": vars(args), "train_seconds": round(train_seconds, 1),
               "reward_curve": curve, "eval_prompts": len(eval_q), "win_rate_final_vs_initial": wins,
               "unchanged_answers": unchanged, "answers": [{"prompt": q, "initial": b, "final": a}
                                                            for q, b, a in zip(eval_q, before, after)],
               "mean_p_final_better": sum(p_after) / len(p_after),
               "mean_chars": {"initial": sum(map(len, before)) / len(before), "final": sum(map(len, after)) / len(after)},
               "total_seconds": round(time.perf_counter() - started, 1)}
    (out / "grpo.json").write_text(json.dumps(results, indent=2))
    plot(curve, out / "reward_curve.png")
    print(json.dumps({k: v for k, v in results.items() if k not in ("reward_curve", "answers")}, indent=2))


def plot(curve, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([s for s, _ in curve], [r for _, r in curve], marker="o")
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("judge reward vs reference (log-odds)")
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
