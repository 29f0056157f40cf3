"""Inference backends against eager fp32 PyTorch, side by side on the same pairs.

For short (~300-token) and long (~1.2k-token) judge prompts, the zero-shot SmolLM2 judge
scores the same pairs (both orders) with each backend of rewardkit/models/backends.py and
with eager PyTorch at 1 and 2 threads. Reported per backend: seconds, speed-up over eager fp32
(the library's default path: prefix cache on, 2 threads), verdict agreement with eager and the
largest and mean |ΔP(A)|, and the one-time setup (export / compile) apart. Adoption rule
(issue #15): ≥ 1.5× faster with ≥ 99% verdict agreement and P(A) within 0.02.

    python bench/cpu_backends.py [--short 24] [--long 8] [--backends onnx,openvino,openvino-int8,int8,compile]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from common import hardware, matmul_gflops
from scoring import pick_pairs


def score(judge, pairs) -> tuple[list[float], float]:
    start = time.perf_counter()
    probs = judge.compare([p.prompt for p in pairs], [p.chosen for p in pairs], [p.rejected for p in pairs])
    return probs, time.perf_counter() - start


def compare_to(reference: list[float], probs: list[float]) -> dict:
    agree = sum((a > 0.5) == (b > 0.5) for a, b in zip(reference, probs)) / len(reference)
    deltas = [abs(a - b) for a, b in zip(reference, probs)]
    return {"agreement": agree, "max_dp": max(deltas), "mean_dp": sum(deltas) / len(deltas)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--short", type=int, default=24, help="pairs near 300 tokens per judge prompt")
    parser.add_argument("--long", type=int, default=8, help="pairs near 1,200 tokens per judge prompt")
    parser.add_argument("--backends", default="onnx,openvino,openvino-int8,int8,compile")
    parser.add_argument("--output", default="runs/cpu_backends.json")
    args = parser.parse_args()

    from rewardkit import load_reward_model
    from rewardkit.models.backends import apply_backend

    header = {"machine": hardware(), "fp32_gflops": round(matmul_gflops(torch.float32), 1),
              "bf16_gflops": round(matmul_gflops(torch.bfloat16), 1), "settings": vars(args)}
    print(f"# CPU backends vs eager fp32\n# machine: {header['machine']}\n# matmul 1024²: fp32 "
          f"{header['fp32_gflops']} GFLOP/s, bf16 {header['bf16_gflops']} GFLOP/s\n# settings: {vars(args)}", flush=True)
    judge = load_reward_model(args.model, dtype="fp32")
    sets = {"short": pick_pairs(judge, 300, args.short), "long": pick_pairs(judge, 1200, args.long)}
    rows = []
    references = {}
    threads = torch.get_num_threads()
    for name, pairs in sets.items():
        score(judge, pairs[:2])  # warm-up
        references[name], seconds = score(judge, pairs)
        rows.append({"set": name, "backend": "eager", "threads": threads, "seconds": seconds, "speedup": 1.0,
                     "agreement": 1.0, "max_dp": 0.0, "mean_dp": 0.0, "setup_s": 0.0})
        if threads > 1:
            torch.set_num_threads(1)
            probs, single = score(judge, pairs)
            torch.set_num_threads(threads)
            rows.append({"set": name, "backend": "eager", "threads": 1, "seconds": single,
                         "speedup": seconds / single, **compare_to(references[name], probs), "setup_s": 0.0})
    baseline = {r["set"]: r["seconds"] for r in rows if r["backend"] == "eager" and r["threads"] == threads}
    for backend in [b for b in args.backends.split(",") if b]:
        scorer = load_reward_model(args.model, dtype="fp32")
        try:
            start = time.perf_counter()
            apply_backend(scorer, backend)
            score(scorer, sets["short"][:2])  # first call: compile / warm-up
            setup = time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - a backend that cannot run here is reported, not fatal
            print(f"{backend}: unavailable ({type(exc).__name__}: {str(exc)[:200]})", flush=True)
            rows.append({"backend": backend, "error": f"{type(exc).__name__}: {str(exc)[:200]}"})
            continue
        for name, pairs in sets.items():
            probs, seconds = score(scorer, pairs)
            rows.append({"set": name, "backend": backend, "threads": threads, "seconds": seconds,
                         "speedup": baseline[name] / seconds, **compare_to(references[name], probs), "setup_s": setup})
            print(f"{backend} {name}: {baseline[name] / seconds:.2f}x", flush=True)
    print(table(rows, sets))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({**header, "pairs": {k: len(v) for k, v in sets.items()}, "rows": rows},
                                            indent=2))


def table(rows: list[dict], sets: dict) -> str:
    lines = ["| set | backend | threads | s | speed-up vs eager fp32 | verdict agreement | max abs ΔP(A) | mean abs ΔP(A) | setup s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| — | {r['backend']} | | | unavailable: {r['error']} | | | | |")
            continue
        lines.append(f"| {r['set']} ({len(sets[r['set']])} pairs) | {r['backend']} | {r['threads']} | {r['seconds']:.1f} | "
                     f"{r['speedup']:.2f}× | {r['agreement']:.3f} | {r['max_dp']:.4f} | {r['mean_dp']:.4f} | {r['setup_s']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
