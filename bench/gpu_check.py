"""The GPU check: rewardkit's own training and scoring paths on a GPU, timed, in one call.

No weights travel: the models are built from the real architectures' configs with random
weights (speed and code paths do not need trained ones) — SmolLM2-135M and a Qwen2.5-1.5B-shaped
model — with a small offline tokenizer (its ids are all a random model needs). Per model:
bf16 judge and Bradley–Terry training steps through `train_method` (tokens/s, peak GPU memory),
FSDP2 (`--fsdp`, fully_shard over one GPU with NCCL), and scoring pairs/s with and without the
shared-prefix cache. Everything goes to one JSON file.

    bash bench/gpu_check.sh                      # on the device machine: writes $OUT/gpu_check.json
    python bench/gpu_check.py --tiny --output /tmp/check   # the same code paths on a CPU, in seconds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/tiny.py: the offline tokenizer

SHAPES = {  # from the models' published config.json files
    "smollm2-135m": dict(kind="llama", hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True,
                         max_position_embeddings=8192, rope_theta=100000.0, rms_norm_eps=1e-5),
    "qwen2.5-1.5b-shaped": dict(kind="qwen2", hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                                num_attention_heads=12, num_key_value_heads=2, vocab_size=151936,
                                tie_word_embeddings=True, max_position_embeddings=32768, rope_theta=1000000.0,
                                rms_norm_eps=1e-6),
    "tiny": dict(kind="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True, max_position_embeddings=4096,
                 rope_theta=10000.0, rms_norm_eps=1e-5),
}


def build(name: str, directory: Path) -> Path:
    import torch
    from tiny import build_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    shape = dict(SHAPES[name])
    kind = shape.pop("kind")
    tokenizer = build_tokenizer()
    config_class, model_class = (LlamaConfig, LlamaForCausalLM) if kind == "llama" else (Qwen2Config, Qwen2ForCausalLM)
    config = config_class(**shape, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                          bos_token_id=tokenizer.bos_token_id)
    torch.manual_seed(0)
    model = model_class(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def pairs(count: int, words: int) -> list[dict]:
    import random

    rng = random.Random(0)
    vocab = "good bad helpful harmful correct wrong yes no sure sorry answer question".split()
    return [{"prompt": " ".join(rng.choice(vocab) for _ in range(words // 4)),
             "chosen": " ".join(rng.choice(vocab) for _ in range(words)),
             "rejected": " ".join(rng.choice(vocab) for _ in range(words))} for _ in range(count)]


def peak_gb() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def train_arm(method: str, model: Path, data: list, output: Path, args, **extra) -> dict:
    from rewardkit import LoopConfig, train_method

    reset_peak()
    start = time.perf_counter()
    loop = LoopConfig(model=str(model), data=data, output=str(output), max_steps=args.steps, batch_size=args.batch_size,
                      max_length=args.max_length, lr=1e-5, save_every=10**6, mixed_precision="auto", **extra)
    summary = train_method(method, loop)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    steady = [r["tokens_per_s"] for r in records if "tokens_per_s" in r][1:]  # the first step warms up
    return {"seconds": round(seconds, 1), "steps": summary["steps"], "final_loss": summary["final_loss"],
            "tokens_per_s": round(sum(steady) / max(1, len(steady)), 1) if steady else None, "peak_gpu_gb": peak_gb(),
            "precision": json.loads((output / "rewardkit.json").read_text())["precision"]}


def score_arm(model: Path, data: list, prefix_cache: bool) -> dict:
    from rewardkit import load_reward_model

    scorer = load_reward_model(str(model), use_prefix_cache=prefix_cache)
    prompts, chosen, rejected = ([r[k] for r in data] for k in ("prompt", "chosen", "rejected"))
    scorer.compare(prompts[:4], chosen[:4], rejected[:4])  # warm-up
    reset_peak()
    start = time.perf_counter()
    scorer.compare(prompts, chosen, rejected)
    seconds = time.perf_counter() - start
    return {"pairs_per_s": round(len(data) / seconds, 2), "precision": scorer.precision.describe(),
            "peak_gpu_gb": peak_gb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=os.environ.get("OUT", "runs/gpu_check"))
    parser.add_argument("--tiny", action="store_true", help="the tiny model only (a CPU dry run of every code path)")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--pairs", type=int, default=256)
    args = parser.parse_args()

    import torch
    import torch.distributed as dist

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    if "RANK" not in os.environ:  # one process of its own group, so that --fsdp shards over it
        os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="29611")
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    report = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
              "torch": torch.__version__, "settings": vars(args), "models": {}}
    names = ["tiny"] if args.tiny else ["smollm2-135m", "qwen2.5-1.5b-shaped"]
    words = 40 if args.tiny else 120
    data = pairs(args.pairs, words)
    train = data[: args.batch_size * (args.steps + 1)]
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            started, result = time.perf_counter(), {}
            model = build(name, Path(scratch) / name)
            result["build_s"] = round(time.perf_counter() - started, 1)
            for arm, method, extra in (("judge", "judge", {}), ("bradley_terry", "bradley_terry", {}),
                                       ("judge_fsdp", "judge", {"fsdp": True})):
                try:
                    result[arm] = train_arm(method, model, train, Path(scratch) / f"{name}-{arm}", args, **extra)
                except Exception as exc:  # one failing arm must not lose the others' figures
                    result[arm] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                print(name, arm, result[arm], flush=True)
            judge_dir = Path(scratch) / f"{name}-judge"
            for arm, cache in (("score_prefix_cache", True), ("score_no_prefix_cache", False)):
                try:
                    result[arm] = score_arm(judge_dir, data, cache)
                except Exception as exc:
                    result[arm] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                print(name, arm, result[arm], flush=True)
            report["models"][name] = result
            (output / "gpu_check.json").write_text(json.dumps(report, indent=2))
    dist.destroy_process_group()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
