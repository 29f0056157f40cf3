"""Training a multi-objective model: read and check every file, run the frozen backbone once
over all rows (states cached on disk, so a crash later resumes without it), fit stage 1, then
stage 2, and save a directory that loads like any other reward model."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import torch

from rewardkit.data import load_pairs
from rewardkit.data.ratings import Ratings, load_ratings
from rewardkit.data.templates import default_reward_template
from rewardkit.errors import ConfigError
from rewardkit.files import write_text
from rewardkit.methods.base import check_length, choose_template
from rewardkit.methods.multi_objective.attributes import decorrelation_lambdas, fit_linear, fit_ridge, require_sklearn
from rewardkit.methods.multi_objective.categories import categorize
from rewardkit.methods.multi_objective.config import MultiObjectiveConfig, parse_scale
from rewardkit.methods.multi_objective.gating import PairStates, choose_length_penalty, pair_metrics, train_experts, train_gate
from rewardkit.methods.multi_objective.head import MultiObjectiveHead
from rewardkit.methods.multi_objective.scorer import KIND
from rewardkit.methods.multi_objective.states import StateReader, States, cached_states, rows_digest
from rewardkit.models.hf_compat import make_compatible
from rewardkit.models.manifest import ModelManifest, write_manifest
from rewardkit.models.precision import set_autocast

DERIVED_SAFETY = "harmlessness"


def fit_multi_objective(loop, options: MultiObjectiveConfig, on_event=None) -> dict:
    emit = on_event or (lambda kind, data: None)
    started = time.time()
    data = read_inputs(loop, options)  # every file checked before the model loads
    from rewardkit.models.loading import load_backbone

    precision = loop.precision()  # the states are read the way the reloaded scorer reads them
    model, tokenizer = load_backbone(loop.model, dtype=precision.weights_dtype, trust_remote_code=loop.trust_remote_code)
    set_autocast(model, precision)
    check_length(loop, model)
    template = choose_template(loop, default_reward_template())
    reader = StateReader(model, tokenizer, template, loop.max_length)
    cache = Path(loop.output) / ".states"
    if not loop.resume and cache.exists():
        shutil.rmtree(cache)

    def states(name, prompts, responses) -> States:
        key = rows_digest(loop.model, template.to_dict(), loop.max_length, prompts, responses)
        return cached_states(cache, name, key, lambda: reader.read(
            prompts, responses, progress=lambda done, total: emit("states", {"part": name, "rows": done, "total": total})))

    pairs = data["pairs"]
    pair_states = pair_states_of(data, states)
    head, summary = fit_heads(loop, options, data, states, pair_states, model.config.hidden_size, emit)
    summary.update(pair_metrics(head, pair_states))
    summary["truncated_rows"] = pair_states.chosen.truncated + pair_states.rejected.truncated
    summary["pairs"], summary["seconds"] = len(pairs), round(time.time() - started, 1)
    _save(loop, options, model, tokenizer, template, head, summary, precision)
    emit("saved", {"output": loop.output})
    return summary


def read_inputs(loop, options: MultiObjectiveConfig) -> dict:
    """Pairs, ratings, safety pairs and categories, every file checked (no model needed)."""
    if options.pairs and loop.data:
        raise ConfigError("give the preference pairs once: --pairs or --data, not both")
    source = options.pairs or loop.data
    if not source:
        raise ConfigError("--pairs: give at least one preference pair file (stage 2)")
    pairs = load_pairs(source).records
    if not pairs:
        raise ConfigError("--pairs: no usable pairs")
    if loop.max_pairs is not None and loop.max_pairs < len(pairs):
        random.Random(loop.seed).shuffle(pairs)
        pairs = pairs[:loop.max_pairs]
    ratings = safety = categories = None
    if options.experts:
        names, categories = categorize(pairs, options.experts, options.min_expert_pairs)
        return {"pairs": pairs, "categories": categories, "names": names, "ratings": None, "safety": None}
    if not options.ratings:
        raise ConfigError("--ratings: give at least one rated-response file (stage 1), or use --experts")
    require_sklearn() if options.attribute_heads == "ridge" else None
    ratings = load_ratings(options.ratings, scale=parse_scale(options.scale))
    names = list(ratings.attributes)
    if options.safety_pairs:
        safety = load_pairs(options.safety_pairs).records
        names.append(DERIVED_SAFETY)
    if options.decorrelate == "verbosity" and "verbosity" not in names:
        raise ConfigError("--decorrelate verbosity: the ratings have no 'verbosity' attribute; "
                          "use --decorrelate length or none")
    unknown = [m for m in options.mix if m not in names]
    if unknown:
        raise ConfigError(f"--mix: unknown attribute(s) {unknown}; the heads are {names}")
    return {"pairs": pairs, "categories": None, "names": names, "ratings": ratings, "safety": safety}


def pair_states_of(data: dict, states) -> PairStates:
    pairs = data["pairs"]
    return PairStates(states("chosen", [p.prompt for p in pairs], [p.chosen for p in pairs]),
                      states("rejected", [p.prompt for p in pairs], [p.rejected for p in pairs]),
                      torch.tensor(data["categories"]) if data["categories"] is not None else None)


def fit_heads(loop, options, data: dict, states, pair_states: PairStates, hidden: int, emit=None):
    """(head, summary): stages 1 and 2 on states; `states(name, prompts, responses)` gives the
    backbone's states of any further rows (the ratings, the safety pairs)."""
    emit = emit or (lambda kind, payload: None)
    torch.manual_seed(loop.seed)  # the gate's initial weights: the same run gives the same model
    fit = _fit_experts if options.experts else _fit_attributes
    return fit(loop, options, data, states, pair_states, hidden, emit)


def _standardisation(head: MultiObjectiveHead, responses: torch.Tensor, prompts: torch.Tensor) -> None:
    head.response_mean.copy_(responses.mean(0))
    head.response_std.copy_(responses.std(0).clamp(min=1e-4))
    head.prompt_mean.copy_(prompts.mean(0))
    head.prompt_std.copy_(prompts.std(0).clamp(min=1e-4))


def _fit_attributes(loop, options, data, states, pair_states: PairStates, hidden: int, emit):
    ratings: Ratings = data["ratings"]
    names: list[str] = data["names"]
    rated = states("ratings", [r.prompt for r in ratings.records], [r.response for r in ratings.records])
    response_rows, targets = [rated.response], [torch.tensor(ratings.targets(tuple(ratings.attributes)))]
    if data["safety"] is not None:
        safety = data["safety"]
        targets = [torch.cat([targets[0], torch.full((len(targets[0]), 1), float("nan"))], dim=1)]
        for name, texts, value in (("safety-chosen", [p.chosen for p in safety], 1.0),
                                   ("safety-rejected", [p.rejected for p in safety], 0.0)):
            part = states(name, [p.prompt for p in safety], texts)
            response_rows.append(part.response)
            block = torch.full((len(part), len(names)), float("nan"))
            block[:, -1] = value
            targets.append(block)
    responses, targets = torch.cat(response_rows), torch.cat(targets)
    mixed = options.mix or [n for n in names if not (options.decorrelate == "verbosity" and n == "verbosity")]
    origins = {n: "human rating" for n in ratings.attributes}
    if data["safety"] is not None:
        origins[DERIVED_SAFETY] = "derived: chosen = 1, rejected = 0 in " + ", ".join(map(str, options.safety_pairs))

    def make_head() -> MultiObjectiveHead:
        head = MultiObjectiveHead(hidden, names, gate_hidden=options.gate_hidden, mixed=mixed,
                                  decorrelate=options.decorrelate, origins=origins)
        head.load_state_dict(template_state, strict=True)
        return head

    template = MultiObjectiveHead(hidden, names, gate_hidden=options.gate_hidden, mixed=mixed,
                                  decorrelate=options.decorrelate, origins=origins)
    pair_responses = torch.cat([pair_states.chosen.response, pair_states.rejected.response])
    _standardisation(template, torch.cat([responses, pair_responses]), pair_states.chosen.prompt)
    emit("stage", {"stage": 1, "rows": len(responses)})
    z = template.standardise(responses, "response")
    steps = loop.max_steps or options.gate_steps
    fit = (fit_ridge(z, targets, names, options.ridge_alphas) if options.attribute_heads == "ridge"
           else fit_linear(z, targets, names, steps=steps, lr=options.gate_lr, seed=loop.seed))
    with torch.no_grad():
        template.weight.copy_(fit.weight)
        template.bias.copy_(fit.bias)
        lengths = torch.cat([pair_states.chosen.length, pair_states.rejected.length])
        template.length_mean.copy_(torch.log1p(lengths).mean())
        if options.decorrelate != "none":
            scores = template.scores(pair_responses)
            target = (scores[:, names.index("verbosity")] if options.decorrelate == "verbosity"
                      else torch.log1p(lengths) - template.length_mean)
            skip = [names.index("verbosity")] if options.decorrelate == "verbosity" else []
            template.lambdas.copy_(decorrelation_lambdas(scores, target, skip))
    template_state = {k: v.clone() for k, v in template.state_dict().items()}
    emit("stage", {"stage": 2, "pairs": len(pair_states)})
    penalty, trials = options.length_penalties[0], []
    if len(options.length_penalties) > 1:
        penalty, trials = choose_length_penalty(make_head, pair_states, options.length_penalties,
                                                share=options.validation_share, steps=steps, lr=options.gate_lr,
                                                seed=loop.seed)
    head = make_head()
    train_gate(head, pair_states, steps=steps, lr=options.gate_lr, length_penalty=penalty, seed=loop.seed)
    summary = {"attributes": names, "origins": origins, "mixed": mixed, "rated_rows": fit.rows,
               "masked": ratings.masked, "ridge_alphas": fit.alphas, "length_penalty": penalty,
               "penalty_trials": trials, "ratings_truncated_rows": rated.truncated}
    return head, summary


def _fit_experts(loop, options, data, states, pair_states: PairStates, hidden: int, emit):
    names = data["names"]
    head = MultiObjectiveHead(hidden, names, gate_hidden=options.gate_hidden, mode="experts",
                              origins={n: f"expert for {options.experts} = {n}" for n in names})
    _standardisation(head, torch.cat([pair_states.chosen.response, pair_states.rejected.response]),
                     pair_states.chosen.prompt)
    emit("stage", {"stage": 2, "pairs": len(pair_states)})
    report = train_experts(head, pair_states, steps=loop.max_steps or options.gate_steps, lr=options.gate_lr,
                           seed=loop.seed)
    counts = {n: int((pair_states.categories == i).sum()) for i, n in enumerate(names)}
    return head, {"experts": names, "pairs_per_expert": counts, **report}


def _save(loop, options, model, tokenizer, template, head: MultiObjectiveHead, summary: dict, precision) -> None:
    """Everything into a staging folder first; files move into place with the manifest last,
    so a crash never leaves a directory that loads as something it is not."""
    from dataclasses import asdict

    output = Path(loop.output)
    staging = output / ".saving"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    make_compatible(staging)
    head.save(staging)
    write_text(staging / "metrics.json", json.dumps(summary, indent=2, default=str))
    manifest = ModelManifest(kind=KIND, template=template.to_dict(), max_length=loop.max_length, base_model=loop.model,
                             training={"method": "multi_objective", **loop.to_dict(), **asdict(options)},
                             precision=precision.to_dict(),
                             extra={"mode": head.mode, "names": head.names, "origins": head.origins})
    write_manifest(staging, manifest)
    for item in sorted(staging.iterdir(), key=lambda p: p.name == "rewardkit.json"):
        os.replace(item, output / item.name)
    staging.rmdir()
