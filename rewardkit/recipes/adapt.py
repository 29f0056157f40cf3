"""`rewardkit adapt`: a foundation reward model fitted to a domain of your own with K labeled
pairs, reporting what the domain gained and what general ability was kept (DSP's staged
training: general preferences first, the domain after — Cheng et al. 2023, "Everyone Deserves
A Reward"; GRAM's own pitch of a foundation adapted cheaply), optionally averaged with its base
(models/averaging.py) against forgetting.

The K shots are a seeded sample of the domain file; the rest of the file (up to
`--held-out`) is the domain's held-out set — or, with `--held-out-data`, that file is (up to
`--held-out` rows) and every row of the domain file may be a shot, so runs at different K
measure on the same rows (a held-out row sharing a prompt or a long run of words with the
domain file draws a ContaminationWarning). The foundation's kind decides the method: a saved
judge or a plain causal LM trains as a judge, a Bradley–Terry model as Bradley–Terry — each
with the foundation's own template. adapt.json records the shots' ids, every accuracy with its
95% interval, and the averaging.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

from rewardkit.domains import COUNT, PROBABILITY, check_domains
from rewardkit.errors import ConfigError
from rewardkit.files import write_text
from rewardkit.training.loop_config import LoopConfig, option

METHODS = ("auto", "judge", "bradley_terry")


@dataclass
class AdaptConfig:
    shots: int = option(64, "K: labeled domain pairs to adapt on (a seeded sample of --data)", domain=COUNT)
    held_out: int = option(500, "domain pairs held out for the domain accuracy, at most (the rest of --data)",
                           domain=COUNT)
    held_out_data: list[str] = option(help="the domain's held-out pairs as file(s) of their own (then all of --data is "
                                           "the pool the K shots come from)", factory=list)
    general_eval: list[str] = option(help="general preference file(s) whose accuracy the adaptation should keep", factory=list)
    method: str = option("auto", "judge, bradley_terry, or auto: the foundation's own kind")
    average_with: str | None = option(None, "weight-average the adapted model with this model [default with --alpha: "
                                            "the foundation]")
    alpha: float | None = option(None, "the adapted model's share in the weight average (1 = adapted, 0 = base)",
                                 domain=PROBABILITY)
    layer_alpha: list[str] = option(help="REGEX=ALPHA: another α for the tensors whose names match (first match wins), "
                                    "e.g. 'layers\\.[0-9]\\.=0.2'; repeat the flag", factory=list)

    def __post_init__(self):
        check_domains(self)
        if self.method not in METHODS:
            raise ConfigError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if (self.average_with or self.layer_alpha) and self.alpha is None:
            raise ConfigError("--average-with / --layer-alpha need --alpha (the adapted model's share)")
        self.layer_alphas()  # a malformed --layer-alpha fails before anything runs

    def layer_alphas(self) -> dict[str, float]:
        from rewardkit.models.averaging import parse_layer_alphas

        return parse_layer_alphas(self.layer_alpha)


def method_for(foundation: str, choice: str) -> str:
    from rewardkit.models.loading import resolve_model_path
    from rewardkit.models.manifest import read_manifest

    if choice != "auto":
        return choice
    manifest = read_manifest(resolve_model_path(foundation))
    if manifest is None or manifest.kind == "generative_judge":
        return "judge"
    if manifest.kind == "bradley_terry":
        return "bradley_terry"
    raise ConfigError(f"--model {foundation}: a {manifest.kind} model; adapt trains judges and Bradley–Terry models "
                      "(give --method)")


def split_shots(pairs: list, shots: int, held_out: int, seed: int, held_apart: bool = False) -> tuple[list, list]:
    """K seeded shots and the held-out rows after them in the same order (none when the
    held-out set is a file of its own: `held_apart`)."""
    if held_apart:
        if shots > len(pairs):
            raise ConfigError(f"--shots {shots}: the domain data has only {len(pairs)} pairs")
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        return [pairs[i] for i in order[:shots]], []
    if shots >= len(pairs):
        raise ConfigError(f"--shots {shots}: the domain data has {len(pairs)} pairs; at least {shots + 1} are needed "
                          "so that some are held out")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    return [pairs[i] for i in order[:shots]], [pairs[i] for i in order[shots:shots + held_out]]


def shot_ids(pairs: list, shots: list) -> list:
    """Each shot's `id`, or where a row has none its index in the data (rows read in order)."""
    position = {id(pair): index for index, pair in enumerate(pairs)}
    return [pair.id if pair.id is not None else f"row {position[id(pair)]}" for pair in shots]


def adapt(loop: LoopConfig, options: AdaptConfig, *, on_event=None, before: dict | None = None) -> dict:
    """Fine-tune the foundation on K domain shots and score it before and after. `before`: the
    foundation's `accuracies()` on the same held-out and general rows, from an earlier run of a
    sweep over K (a held-out file of its own keeps those rows fixed); scored here when None."""
    from rewardkit.data import load_pairs
    from rewardkit.methods.train import train_method
    from rewardkit.models.averaging import average_directory
    from rewardkit.models.loading import resolve_model_path

    emit = on_event or (lambda kind, data: None)
    foundation = resolve_model_path(loop.model)
    pairs = load_pairs(loop.data).records
    shots, held = split_shots(pairs, options.shots, options.held_out, loop.seed, bool(options.held_out_data))
    if options.held_out_data:
        from rewardkit.data.overlap import warn_if_overlapping

        held = load_pairs(list(options.held_out_data)).records[:options.held_out]
        warn_if_overlapping(loop.data, options.held_out_data, "the domain file the shots come from")
    method = method_for(loop.model, options.method)
    output = Path(loop.output)
    output.mkdir(parents=True, exist_ok=True)
    if before is None:
        emit("stage", {"text": f"scoring the foundation on {len(held)} domain and the general pairs"})
        before = accuracies(foundation, held, options.general_eval, loop.seed)
    else:
        before = check_before(before, held, options.general_eval)
    emit("stage", {"text": f"adapting ({method}) on {len(shots)} domain pairs"})
    train_loop = replace(loop, model=foundation, data=shots, template=loop.template or _saved_template(foundation, output))
    summary = train_method(method, train_loop)
    report = {"foundation": str(loop.model), "method": method, "shots": len(shots),
              "shot_ids": shot_ids(pairs, shots), "held_out": len(held), "training": summary, "before": before}
    if options.alpha is not None:
        emit("stage", {"text": f"averaging with {options.average_with or loop.model} at alpha {options.alpha}"})
        base = resolve_model_path(options.average_with) if options.average_with else foundation
        report["averaging"] = average_directory(output, base, options.alpha, options.layer_alphas())
    emit("stage", {"text": "scoring the adapted model"})
    report["after"] = accuracies(str(output), held, options.general_eval, loop.seed)
    report["domain_gain"] = report["after"]["domain"]["accuracy"] - before["domain"]["accuracy"]
    report["domain_gain_paired"] = paired_gain(before, report["after"], "domain", loop.seed)
    if options.general_eval:
        report["general_retained"] = report["after"]["general"]["accuracy"] - before["general"]["accuracy"]
        report["general_retained_paired"] = paired_gain(before, report["after"], "general", loop.seed)
    for when in ("before", "after"):
        report[when].pop("rows")  # per-pair credits: used above, not kept
    write_text(output / "adapt.json", json.dumps(report, indent=2, default=str))
    emit("done", {k: v for k, v in report.items() if isinstance(v, float)})
    return report


def _saved_template(foundation: str, output: Path) -> str | None:
    """The foundation's own template as a file the training loop reads (None: the method's default)."""
    from rewardkit.models.manifest import read_manifest

    manifest = read_manifest(foundation)
    if manifest is None or not manifest.template:
        return None
    path = output / "foundation_template.json"
    write_text(path, json.dumps(manifest.template, indent=2))
    return str(path)


def accuracies(model: str, domain: list, general: list, seed: int) -> dict:
    """Held-out domain accuracy and the general files' accuracy (each with its 95% interval), and
    under "rows" each set's per-pair credits and prompt keys (what a paired difference needs)."""
    from rewardkit.eval.metrics import credits
    from rewardkit.eval.runner import evaluate_files, evaluate_sets
    from rewardkit.methods.load import load_reward_model

    def per_pair(rows):
        return credits([r["p_chosen"] for r in rows]), [r["prompt_key"] for r in rows]

    scorer = load_reward_model(model)
    results, rows = evaluate_sets(scorer, {"domain": domain}, seed=seed)
    out = {"domain": {"accuracy": results["accuracy"], "accuracy_ci95": results["accuracy_ci95"],
                      "ece": results["ece"]}, "rows": {"domain": per_pair(rows)}}
    if general:
        results, rows = evaluate_files(scorer, general, seed=seed)
        out["general"] = {"accuracy": results["accuracy"], "accuracy_ci95": results["accuracy_ci95"],
                          "ece": results["ece"], "per_file": {k: v["accuracy"] for k, v in results["per_file"].items()}}
        out["rows"]["general"] = per_pair(rows)
    return out


def check_before(before: dict, held: list, general: list) -> dict:
    """A copy of scores passed in as `before`, refused where they cannot be of these rows."""
    sets = {"domain": len(held), **({"general": None} if general else {})}
    for name, count in sets.items():
        rows = before.get("rows", {}).get(name)
        if name not in before or rows is None:
            raise ConfigError(f"before: no {name!r} scores with their rows (pass accuracies()'s result whole)")
        if count is not None and len(rows[1]) != count:
            raise ConfigError(f"before: {len(rows[1])} {name} rows scored, but {count} are held out here")
    return {**before, "rows": dict(before["rows"])}


def paired_gain(before: dict, after: dict, name: str, seed: int) -> dict:
    """after − before on the same rows of one set, with its paired 95% interval (prompts resampled
    together) and whether it holds zero."""
    from rewardkit.eval.intervals import paired_difference

    (first, prompts), (second, _) = before["rows"][name], after["rows"][name]
    return paired_difference(first, second, prompts, seed=seed)
