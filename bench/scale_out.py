"""One process against two on this machine, side by side in one run: judge training (plain,
DDP and FSDP2 with the same global batch) and scoring (`rewardkit score`, one process against
two sharing the batches), each arm a fresh launch through the real CLI.

On 2 CPU cores two processes split the same two cores, so this measures what distribution
costs here (communication, duplicated work), not what it buys on a cluster; the time each arm
took, its tokens/s and the ratio to one process are printed and saved.

    python bench/scale_out.py [--model smollm2-135m] [--pairs 64] [--steps 8] [--output runs/scale_out]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import SHARED_DATA, hardware


def launch(processes: int, arguments: list[str], port: int) -> float:
    """Seconds of one CLI run with `processes` processes (threads split so the cores are shared evenly)."""
    threads = max(1, (os.cpu_count() or 2) // processes)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port",
                 str(port), "-m", "rewardkit.cli.main"] if processes > 1 else [sys.executable, "-m", "rewardkit.cli.main"])
    start = time.perf_counter()
    result = subprocess.run([*launcher, *arguments], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments[:1])} with {processes} process(es) failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--output", default="runs/scale_out")
    args = parser.parse_args()

    from rewardkit.data import load_pairs, write_pairs
    from rewardkit.models import resolve_model_path

    model = resolve_model_path(args.model)
    work = Path(args.output)
    work.mkdir(parents=True, exist_ok=True)
    pairs = [p for p in load_pairs(SHARED_DATA / "ultrafeedback_binarized_subset.jsonl").records
             if len(p.chosen) + len(p.rejected) + len(str(p.prompt)) < 1200][: args.pairs]
    data = work / "pairs.jsonl"
    write_pairs(data, pairs)
    print(f"# scale-out: 1 vs 2 processes\n# machine: {hardware()}\n# settings: {vars(args)}; {len(pairs)} pairs",
          flush=True)
    train = ["finetune", "--model", model, "--data", str(data), "--max-steps", str(args.steps), "--batch-size", "8",
             "--max-length", str(args.max_length), "--save-every", "100000", "--train-layers", "6"]
    arms = {"train, 1 process": (1, train + ["--output", str(work / "train-1")]),
            "train, 2 processes (DDP)": (2, train + ["--batch-size", "4", "--output", str(work / "train-ddp")]),
            "train, 2 processes (FSDP2)": (2, train + ["--batch-size", "4", "--fsdp", "--output", str(work / "train-fsdp")]),
            "score, 1 process": (1, ["score", "--model", model, "--data", str(data), "--output", str(work / "s1.jsonl")]),
            "score, 2 processes": (2, ["score", "--model", model, "--data", str(data), "--output", str(work / "s2.jsonl")])}
    results = {}
    for port, (name, (processes, arguments)) in enumerate(arms.items(), start=29700):
        seconds = launch(processes, arguments, port)
        results[name] = {"processes": processes, "seconds": round(seconds, 1)}
        if name.startswith("train"):
            summary = json.loads((Path(arguments[-1]) / "summary.json").read_text())
            results[name]["final_loss"] = summary["final_loss"]
        print(f"{name}: {seconds:.1f} s", flush=True)
    same_scores = (work / "s1.jsonl").read_bytes() == (work / "s2.jsonl").read_bytes()
    print("\n| arm | processes | s (launch included) | vs 1 process |\n|---|---:|---:|---:|")
    for name, row in results.items():
        base = results["train, 1 process" if name.startswith("train") else "score, 1 process"]["seconds"]
        print(f"| {name} | {row['processes']} | {row['seconds']} | {base / row['seconds']:.2f}× |")
    print(f"\nscores written by 1 and 2 processes identical: {same_scores}")
    (work / "results.json").write_text(json.dumps({"machine": hardware(), "settings": vars(args), "arms": results,
                                                   "same_scores": same_scores}, indent=2))


if __name__ == "__main__":
    main()
