"""Multi-objective reward models vs Bradley–Terry, on one frozen backbone and the same pairs.

Every arm reads the same final states of SmolLM2-135M (computed once with the library's
StateReader and cached under --output, so a rerun resumes without the backbone):
  bt                a linear Bradley–Terry head on the response state (the frozen-backbone
                    baseline: same backbone, same pairs)
  armorm            attribute heads (ridge, HelpSteer ratings + derived harmlessness) mixed by
                    the gate, no decorrelation, no length penalty
  armorm-decorr     the same with verbosity decorrelation and the length penalty chosen on a
                    validation split (the method's defaults)
  armorm-decorr-length  the same, each attribute decorrelated from the measured log length
                    instead of the verbosity head (--decorrelate length)
  experts           category experts (DMoERM): harmless (HH-RLHF harmless) vs helpful (the rest)
Stage 1 and 2 run through the library (`read_inputs`, `fit_heads`); held-out ratings are whole
prompts never seen in stage 1. Reports accuracy ± SE per out-of-domain set (EvalBiasBench's
length-bias subset apart), per-attribute Pearson/Spearman on held-out ratings, and Spearman
correlation of each reward with response length over all OOD responses.

    python bench/multi_objective.py [--pairs 600] [--eval-pairs 100] [--max-length 768]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import torch
from common import SHARED_DATA, hardware
from quality_study import OOD

TRAIN_SOURCES = {"hh_rlhf_harmless": "hh_rlhf_harmless_base_test.jsonl", "hh_rlhf_helpful": "hh_rlhf_helpful_test_rmgallery.jsonl",
                 "ultrafeedback": "ultrafeedback_binarized_subset.jsonl", "pandalm": "pandalm_testset_v1.jsonl",
                 "llamafactory_dpo": "llamafactory_dpo_en_demo.jsonl", "orca_dpo": "orca_dpo_pairs_demo.jsonl"}
RATINGS = ("helpsteer_train_first500.jsonl", "helpsteer2_train_first100.jsonl")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def pair_row(pair, source: str) -> dict:
    from rewardkit.types import prompt_to_json

    return {"prompt": prompt_to_json(pair.prompt), "chosen": pair.chosen, "rejected": pair.rejected,
            "source": source, "subset": pair.subset}


def fits(tokenizer, pair, limit: int) -> bool:
    text = max(len(pair.chosen), len(pair.rejected)) + len(str(pair.prompt))
    return text < limit * 3 and len(tokenizer(str(pair.prompt) + max(pair.chosen, pair.rejected, key=len)).input_ids) < limit - 16


def build_data(args, tokenizer, work: Path) -> dict:
    """Files for stage 1 and 2 and the evaluation sets; every choice seeded."""
    from rewardkit.data import load_pairs

    rng = random.Random(args.seed)
    rows = [json.loads(line) for name in RATINGS for line in (SHARED_DATA / name).read_text().splitlines() if line]
    prompts = sorted({r["prompt"] for r in rows})
    rng.shuffle(prompts)
    held = set(prompts[:int(len(prompts) * 0.2)])
    ratings_train = write_jsonl(work / "ratings_train.jsonl", [r for r in rows if r["prompt"] not in held])
    ratings_eval = [r for r in rows if r["prompt"] in held]
    pools = {name: [p for p in load_pairs(SHARED_DATA / file).records if fits(tokenizer, p, args.max_length)]
             for name, file in TRAIN_SOURCES.items()}
    for pool in pools.values():
        rng.shuffle(pool)
    safety = pools["hh_rlhf_harmless"][:args.safety_pairs]
    pools["hh_rlhf_harmless"] = pools["hh_rlhf_harmless"][args.safety_pairs:]
    per_source = args.pairs // len(pools)
    pairs = [pair_row(p, name) for name, pool in pools.items() for p in pool[:per_source]]
    rng.shuffle(pairs)
    evals = {}
    for name, file in OOD.items():
        records = load_pairs(SHARED_DATA / file).records
        rng.shuffle(records)
        evals[name] = records[:args.eval_pairs]
    mapping = work / "experts.json"
    mapping.write_text(json.dumps({"hh_rlhf_harmless": "harmless", "*": "helpful"}))
    return {"ratings_train": ratings_train, "ratings_eval": ratings_eval, "pairs": write_jsonl(work / "pairs.jsonl", pairs),
            "safety": write_jsonl(work / "safety.jsonl", [pair_row(p, "hh_rlhf_harmless") for p in safety]),
            "evals": evals, "experts": mapping}


def bt_probe(pair_states, steps: int, lr: float, seed: int):
    """A linear Bradley–Terry head on standardised response states: r = w·z."""
    import torch.nn.functional as F

    torch.manual_seed(seed)
    responses = torch.cat([pair_states.chosen.response, pair_states.rejected.response])
    mean, std = responses.mean(0), responses.std(0).clamp(min=1e-4)
    diff = (pair_states.chosen.response - pair_states.rejected.response) / std
    w = torch.zeros(diff.shape[1], requires_grad=True)
    optimizer = torch.optim.AdamW([w], lr=lr, weight_decay=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        (-F.logsigmoid(diff @ w).mean()).backward()
        optimizer.step()
    w = w.detach()
    return lambda prompt, response, length: ((response - mean) / std) @ w


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    value = spearmanr(x, y).statistic
    return float(value) if value == value else 0.0


def evaluate(reward_fn, eval_states: dict, evals: dict) -> dict:
    out, all_rewards, all_lengths = {}, [], []
    for name, (chosen, rejected) in eval_states.items():
        rc = reward_fn(chosen.prompt, chosen.response, chosen.length)
        rr = reward_fn(rejected.prompt, rejected.response, rejected.length)
        right = (rc > rr).float()
        n = len(right)
        acc = right.mean().item()
        out[name] = {"accuracy": acc, "se": math.sqrt(acc * (1 - acc) / n), "n": n}
        if name == "evalbiasbench":
            subset = torch.tensor([p.subset == "length bias" for p in evals[name]])
            part = right[subset].mean().item()
            count = int(subset.sum())
            out["evalbiasbench_length_bias"] = {"accuracy": part, "n": count,
                                                "se": math.sqrt(part * (1 - part) / max(1, count))}
        all_rewards += torch.cat([rc, rr]).tolist()
        all_lengths += torch.cat([chosen.length, rejected.length]).tolist()
    out["mean_ood"] = sum(out[n]["accuracy"] for n in eval_states) / len(eval_states)
    out["reward_length_spearman"] = spearman(all_rewards, all_lengths)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=600, help="stage-2 pairs (split evenly over the training sources)")
    parser.add_argument("--safety-pairs", type=int, default=120, help="HH-harmless pairs for the derived attribute")
    parser.add_argument("--eval-pairs", type=int, default=100, help="per out-of-domain set (EvalBiasBench has 80)")
    parser.add_argument("--max-length", type=int, default=768, help="token limit per row (training pairs are chosen to fit)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/multi_objective")
    args = parser.parse_args()

    from rewardkit.data.ratings import load_ratings
    from rewardkit.data.templates import default_reward_template
    from rewardkit.methods.multi_objective.config import MultiObjectiveConfig
    from rewardkit.methods.multi_objective.fit import fit_heads, pair_states_of, read_inputs
    from rewardkit.methods.multi_objective.states import StateReader, cached_states, rows_digest
    from rewardkit.models.loading import load_backbone
    from rewardkit.training import LoopConfig

    work = Path(args.output)
    work.mkdir(parents=True, exist_ok=True)
    print(f"# multi-objective benchmark\n# machine: {hardware()}\n# settings: {vars(args)}", flush=True)
    started = time.time()
    model, tokenizer = load_backbone(args.model, dtype="fp32")
    data = build_data(args, tokenizer, work)
    template = default_reward_template()
    reader = StateReader(model, tokenizer, template, args.max_length)
    timings = {"states_s": 0.0}

    def states(name, prompts, responses):
        key = rows_digest(args.model, template.to_dict(), args.max_length, prompts, responses)
        t = time.time()

        def compute():
            print(f"  states of {name}: {len(prompts)} rows", flush=True)
            return reader.read(prompts, responses)
        result = cached_states(work / "states", name, key, compute)
        timings["states_s"] += time.time() - t
        return result

    eval_states = {name: (states(f"{name}-chosen", [p.prompt for p in ps], [p.chosen for p in ps]),
                          states(f"{name}-rejected", [p.prompt for p in ps], [p.rejected for p in ps]))
                   for name, ps in data["evals"].items()}
    held = load_ratings(write_jsonl(work / "ratings_eval.jsonl", data["ratings_eval"]))
    held_states = states("ratings-eval", [r.prompt for r in held.records], [r.response for r in held.records])
    arms = {"armorm": dict(decorrelate="none", length_penalties=[0.0]),
            "armorm-decorr": {},
            "armorm-decorr-length": dict(decorrelate="length"),
            "experts": dict(experts=str(data["experts"]))}
    results, summaries = {}, {}
    loop = LoopConfig(model=args.model, output=str(work / "unused"), max_length=args.max_length, seed=args.seed)
    base = None
    for arm, changes in arms.items():
        options = MultiObjectiveConfig(ratings=[str(data["ratings_train"])], pairs=[str(data["pairs"])],
                                       safety_pairs=[str(data["safety"])], **changes)
        inputs = read_inputs(loop, options)
        pair_states = pair_states_of(inputs, states)
        base = base or pair_states
        t = time.time()
        head, summary = fit_heads(loop, options, inputs, states, pair_states, model.config.hidden_size)
        summary["fit_s"] = round(time.time() - t, 1)
        summaries[arm] = summary
        results[arm] = evaluate(lambda p, r, n, head=head: head(p, r, n).detach(), eval_states, data["evals"])
        if arm == "armorm":
            with torch.no_grad():
                adjusted = head.scores(held_states.response)  # stage 1's own prediction
            truth = torch.tensor(held.targets(tuple(held.attributes)))
            results[arm]["attributes"] = {
                name: {"pearson": float(torch.corrcoef(torch.stack([adjusted[:, head.names.index(name)],
                                                                    truth[:, k]]))[0, 1]),
                       "spearman": spearman(adjusted[:, head.names.index(name)].tolist(), truth[:, k].tolist())}
                for k, name in enumerate(held.attributes)}
        print(f"{arm}: mean OOD {results[arm]['mean_ood']:.3f}, reward–length ρ {results[arm]['reward_length_spearman']:.3f}",
              flush=True)
    bt = bt_probe(base, 300, 1e-3, args.seed)
    results["bt"] = evaluate(bt, eval_states, data["evals"])
    print(f"bt: mean OOD {results['bt']['mean_ood']:.3f}, reward–length ρ {results['bt']['reward_length_spearman']:.3f}")
    report = {"machine": hardware(), "settings": vars(args), "results": results, "summaries": summaries,
              "held_out_ratings": len(held.records), "states_s": round(timings["states_s"], 1),
              "total_s": round(time.time() - started, 1)}
    (work / "results.json").write_text(json.dumps(report, indent=2, default=str))
    print(table(results))
    print(f"\nstates: {report['states_s']:.0f} s, total {report['total_s']:.0f} s; results in {work / 'results.json'}")


def table(results: dict) -> str:
    sets = list(OOD) + ["evalbiasbench_length_bias"]
    lines = ["| arm | " + " | ".join(sets) + " | mean OOD | reward–length ρ |",
             "|---|" + "---|" * (len(sets) + 2)]
    for arm in ("bt", "armorm", "armorm-decorr", "armorm-decorr-length", "experts"):
        r = results[arm]
        cells = [f"{r[s]['accuracy']:.3f} ± {r[s]['se']:.3f}" for s in sets]
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {r['mean_ood']:.3f} | {r['reward_length_spearman']:+.3f} |")
    attrs = results["armorm"].get("attributes", {})
    if attrs:
        lines += ["", "| attribute (held-out prompts, stage-1 ridge) | Pearson | Spearman |", "|---|---|---|"]
        for name, a in attrs.items():
            lines.append(f"| {name} | {a['pearson']:.3f} | {a['spearman']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
