"""Preferences from many sources and new domains, on ../shared/data:

  (1) sources    Bradley–Terry with --source-weighting uniform vs more on the six training
                 sources, held out per source and on LLMBar (out of domain): accuracy and ECE
  (2) adaptation `rewardkit adapt` over K shots of one held-out domain, from a foundation judge
                 (the demo's GRAM judge) and from the base model
  (3) averaging  the K = --average-shots model averaged with its foundation over α: domain
                 accuracy gained against general accuracy kept; --layer-alpha REGEX=A gives the
                 matching tensors their own α at every point (per-layer averaging)

    python bench/sources.py --output runs/sources --foundation runs/demo/gram            # ~1 h, 2-core CPU
    python bench/sources.py --output runs/sources-q --foundation runs/demo/gram --quick  # ~10 min
    python bench/sources.py --output runs/hh --domain hh_rlhf_harmless_base_test --studies adaptation --starts base

(1) and (2) from the base model need no foundation. The foundation is scored once per start and
the score reused for every K; a finished K (its adapt.json) is reused when the bench runs again.

Every accuracy carries its 95% bootstrap interval over prompts; the raw results go to
OUTPUT/sources.json. The rows used are disjoint: training, held-out and general files are
split by prompt before anything trains.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, hardware  # noqa: E402

SOURCES = ("hh_rlhf_harmless_base_test", "hh_rlhf_helpful_test_rmgallery", "ultrafeedback_binarized_subset",
           "llmeval2_benchmark", "pandalm_testset_v1", "llamafactory_dpo_en_demo")


def rows_of(name: str) -> list[dict]:
    return [json.loads(line) for line in (SHARED_DATA / f"{name}.jsonl").read_text().splitlines() if line.strip()]


def by_prompt_split(rows: list[dict], train: int, held: int, seed: int) -> tuple[list[dict], list[dict]]:
    """`train` and `held` rows with no prompt in both (short rows first: CPU-sized)."""
    prompts = sorted({r["prompt"] for r in rows})
    random.Random(seed).shuffle(prompts)
    rows = sorted(rows, key=lambda r: len(r["prompt"]) + len(r["chosen"]) + len(r["rejected"]))
    first, second = [], []
    for prompt in prompts:
        group = [r for r in rows if r["prompt"] == prompt][:1]
        if len(first) < train:
            first += group
        elif len(second) < held:
            second += group
    return first, second


def write(rows: list[dict], path: Path, source: str | None = None) -> Path:
    path.write_text("".join(json.dumps({**r, **({"source": source} if source else {})}) + "\n" for r in rows))
    return path


def evaluate(model: str, files: dict[str, Path]) -> dict:
    from rewardkit import load_reward_model
    from rewardkit.eval.metrics import credits
    from rewardkit.eval.runner import evaluate_sets

    results, rows = evaluate_sets(load_reward_model(model, max_length=1024), {k: str(v) for k, v in files.items()})
    return {name: {"accuracy": r["accuracy"], "accuracy_ci95": r["accuracy_ci95"], "ece": r["ece"],
                   "pairs": r["num_pairs"], "credits": credits([x["p_chosen"] for x in rows if x["file"] == name]),
                   "prompts": [x["prompt_key"] for x in rows if x["file"] == name]}
            for name, r in results["per_file"].items()}


def study_sources(args, out: Path, base: str) -> dict:
    from rewardkit import LoopConfig, train_method
    from rewardkit.methods.bradley_terry import BradleyTerryConfig

    train_rows, held = [], {}
    for name in SOURCES:
        tr, he = by_prompt_split(rows_of(name), args.per_source, args.held, seed=0)
        train_rows += [{**r, "source": name} for r in tr]
        held[name] = write(he, out / f"held_{name}.jsonl", name)
    held["llmbar (OOD)"] = write(rows_of("llmbar")[:args.ood], out / "held_llmbar.jsonl", "llmbar")
    train = write(train_rows, out / "sources_train.jsonl")
    arms = {}
    for mode in ("uniform", "more"):
        # both arms see the same batches: one row of each source in turn (MORE's paper batches every
        # source together), so the arms differ only in the weights
        loop = LoopConfig(model=base, data=[str(train)], output=str(out / f"bt_{mode}"), epochs=1, lr=2e-5,
                          batch_size=len(SOURCES), max_length=512, seed=0)
        summary = train_method("bradley_terry", loop,
                               BradleyTerryConfig(source_weighting=mode, source_batches=args.source_batches))
        arms[mode] = {"held_out": evaluate(loop.output, held), "source_weights": summary.get("source_weights")}
        print(f"sources: {mode} done", flush=True)
    from rewardkit.eval.intervals import paired_difference

    paired = {name: paired_difference(arms["uniform"]["held_out"][name]["credits"], arms["more"]["held_out"][name]["credits"],
                                      arms["uniform"]["held_out"][name]["prompts"]) for name in held}
    return {"training_pairs": len(train_rows), "per_source": args.per_source, "batch_size": len(SOURCES),
            "source_batches": args.source_batches, "arms": arms, "more_minus_uniform": paired}


def study_adaptation(args, out: Path, base: str) -> dict:
    from rewardkit import LoopConfig
    from rewardkit.data import load_pairs
    from rewardkit.models.loading import resolve_model_path
    from rewardkit.recipes.adapt import AdaptConfig, accuracies, adapt

    # one row per prompt; the held-out rows are a file of their own, so every K is measured on
    # the same rows and the K shots are nested (the first K of one seeded order of the pool)
    pool, held = by_prompt_split(rows_of(args.domain), args.pool, args.held, seed=1)
    domain, held_file = write(pool, out / "domain.jsonl", args.domain), write(held, out / "domain_held.jsonl", args.domain)
    general = write(rows_of("llmbar")[args.ood:args.ood + args.general], out / "general.jsonl", "llmbar")
    curve, before = {}, {}  # each start scored once on the fixed held-out and general rows, for every K
    models, labels = {"foundation": args.foundation, "base": base}, {"foundation": "foundation", "base": "base model"}
    for shots in args.shots:  # K by K, both starts at each K: a sweep stopped early leaves whole comparisons
        for start, model in ((labels[s], models[s]) for s in args.starts):
            loop = LoopConfig(model=model, data=[str(domain)], output=str(out / f"adapt_{start[:4]}_{shots}"),
                              epochs=2, lr=2e-5, batch_size=4, max_length=768, seed=0)
            saved = Path(loop.output) / "adapt.json"
            if saved.exists():  # a finished run of an interrupted bench: kept, not redone
                report = json.loads(saved.read_text())
            else:
                if start not in before:
                    before[start] = accuracies(resolve_model_path(model), load_pairs(str(held_file)).records[:args.held],
                                               [str(general)], loop.seed)
                report = adapt(loop, AdaptConfig(shots=shots, held_out=args.held, held_out_data=[str(held_file)],
                                                 general_eval=[str(general)]), before=before[start])
            curve.setdefault(start, {})[shots] = {k: report[k] for k in ("before", "after", "domain_gain",
                                                                           "general_retained")}
            print(f"adaptation: {start} K={shots} done", flush=True)
    return {"domain": args.domain, "pool": len(pool), "held_out": len(held), "general": "llmbar (disjoint rows)",
            "curve": curve}


def study_averaging(args, out: Path) -> dict:
    import shutil

    from rewardkit.data import load_pairs
    from rewardkit.models.averaging import average_into
    from rewardkit.recipes.adapt import accuracies, paired_gain

    adapted = out / f"adapt_foun_{args.average_shots}"
    held_pairs = load_pairs(str(out / "domain_held.jsonl")).records  # the rows adaptation measured on
    layer_alphas = args.layer_alpha  # parsed in main()
    curve = {}
    for alpha in args.alphas:
        target = out / (f"averaged_{alpha}" + ("_per_layer" if layer_alphas else ""))
        shutil.rmtree(target, ignore_errors=True)  # a point of an earlier run is made again
        average_into(adapted, args.foundation, target, alpha, layer_alphas)
        curve[alpha] = accuracies(str(target), held_pairs, [str(out / "general.jsonl")], 0)
        print(f"averaging: alpha {alpha} done", flush=True)
    if not layer_alphas and 0.0 in curve:  # each α against the foundation (α = 0), paired over the same rows
        foundation = curve[0.0]
    else:  # with --layer-alpha no point of the curve is the foundation: score it
        foundation = accuracies(str(args.foundation), held_pairs, [str(out / "general.jsonl")], 0)
    for measured in curve.values():
        measured["against_foundation"] = {name: paired_gain(foundation, measured, name, 0)
                                          for name in ("domain", "general")}
    for measured in curve.values():
        measured.pop("rows")
    return {"shots": args.average_shots, "layer_alphas": layer_alphas, "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--foundation", help="the foundation judge (the demo's GRAM judge): needed by (3) and by "
                                             "(2) starting from it")
    parser.add_argument("--per-source", type=int, default=48)
    parser.add_argument("--source-batches", default="interleaved", help="(1)'s epoch order: interleaved or shuffled")
    parser.add_argument("--held", type=int, default=48, help="held-out pairs per source and of the domain")
    parser.add_argument("--ood", type=int, default=96, help="LLMBar rows for (1)")
    parser.add_argument("--general", type=int, default=96, help="LLMBar rows (others than (1)'s) for (2) and (3)")
    parser.add_argument("--domain", default="pandalm_testset_v1")
    parser.add_argument("--shots", default="16,32,64,128,256")
    parser.add_argument("--pool", type=int, help="(2)'s domain rows to draw the shots from (default: the largest K); "
                                                 "keep it when a sweep is shortened or extended, so that the "
                                                 "held-out rows and the nested shots stay the same")
    parser.add_argument("--average-shots", type=int, default=64)
    parser.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--layer-alpha", action="append", default=[],
                        help="(3): REGEX=ALPHA, another α for the tensors whose names match (first match wins; "
                             "repeat the flag), as `rewardkit adapt --layer-alpha`; --alphas then sets the rest")
    parser.add_argument("--studies", default="sources,adaptation,averaging")
    parser.add_argument("--starts", default="foundation,base",
                        help="(2)'s starting points: foundation, base or both (a finished run is reused either way)")
    parser.add_argument("--quick", action="store_true", help="8 pairs per source, K = 16, 32, 12 held out")
    args = parser.parse_args()
    if args.quick:
        args.per_source, args.held, args.ood, args.general, args.shots, args.average_shots = 8, 12, 24, 24, "16,32", 16
    args.shots = [int(x) for x in args.shots.split(",")]
    args.pool = args.pool or max(args.shots)
    if args.pool < max(args.shots):
        parser.error(f"--pool {args.pool} is smaller than the largest K ({max(args.shots)})")
    args.alphas = [float(x) for x in args.alphas.split(",")]
    from rewardkit.errors import ConfigError
    from rewardkit.models.averaging import parse_layer_alphas

    try:
        args.layer_alpha = parse_layer_alphas(args.layer_alpha)  # a malformed one fails before anything trains
    except ConfigError as exc:
        parser.error(str(exc))
    args.starts = [x.strip() for x in args.starts.split(",")]
    if unknown := [x for x in args.starts if x not in ("foundation", "base")]:
        parser.error(f"--starts: unknown {', '.join(unknown)} (choose from foundation, base)")
    studies = args.studies.split(",")
    if not args.foundation and ("averaging" in studies or ("adaptation" in studies and "foundation" in args.starts)):
        parser.error("--foundation is needed by the averaging study and by adaptation starting from it")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    from rewardkit.models.loading import resolve_model_path

    base = resolve_model_path(args.model)
    started, result = time.time(), {"machine": hardware(), "settings": {k: v for k, v in vars(args).items()}}
    runs = {"sources": lambda: study_sources(args, out, base), "adaptation": lambda: study_adaptation(args, out, base),
            "averaging": lambda: study_averaging(args, out)}
    for study in studies:
        result[study] = runs[study]()
        result["seconds"] = round(time.time() - started)
        (out / "sources.json").write_text(json.dumps(result, indent=2, default=str))  # after each study
    print(result["machine"])
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "settings")}, indent=1, default=str)[:6000])


if __name__ == "__main__":
    main()
