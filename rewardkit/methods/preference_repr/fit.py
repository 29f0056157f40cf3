"""Training the preference representation: the base model embeds every pair once (frozen),
the head learns on the embeddings, and the directory saves the base beside the head so that
it loads on its own."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch

from rewardkit.errors import ConfigError
from rewardkit.files import write_text
from rewardkit.methods.preference_repr.head import PreferenceHead, train_head
from rewardkit.methods.preference_repr.scorer import HEAD_FILE, KIND
from rewardkit.models.manifest import ModelManifest, write_manifest
from rewardkit.statistics import spearman


def fit_preference_repr(loop, options, on_event=None) -> dict:
    from rewardkit.data import load_pairs
    from rewardkit.methods.load import load_reward_model
    from rewardkit.models.loading import resolve_model_path
    from rewardkit.scoring.pair_embeddings import embed_pairs

    emit = on_event or (lambda kind, data: None)
    started = time.time()
    pairs = load_pairs(loop.data).records  # checked before any model loads
    held = load_pairs(loop.eval_data).records if loop.eval_data else []
    if loop.max_pairs is not None:
        pairs = pairs[:loop.max_pairs]
    if not pairs:
        raise ConfigError("--data: no usable pairs")
    base_path = resolve_model_path(loop.model)
    precision = loop.precision()  # the pairs are embedded the way the reloaded model embeds them
    base = load_reward_model(base_path, dtype=precision, max_length=loop.max_length)
    emit("stage", {"stage": "embed", "pairs": len(pairs)})
    states = torch.from_numpy(embed_pairs(base, pairs, model=loop.model, progress=_counter(emit, "training", len(pairs))).vectors)
    margins = torch.tensor([float("nan") if p.margin is None else float(p.margin) for p in pairs])
    torch.manual_seed(loop.seed)
    head = PreferenceHead(states.shape[1], options.dim)
    head.scale.copy_(states.pow(2).mean(0).sqrt().clamp(min=1e-6))
    losses = train_head(head, states, margins, steps=loop.max_steps or options.steps, lr=options.head_lr,
                        margin_weight=options.margin_weight, seed=loop.seed)
    summary = {"pairs": len(pairs), "pairs_with_margin": int((~torch.isnan(margins)).sum()), "final_loss": losses[-1],
               **_metrics(head, states, margins, "train")}
    if held:
        held_states = torch.from_numpy(embed_pairs(base, held, model=loop.model,
                                                   progress=_counter(emit, "held-out", len(held))).vectors)
        held_margins = torch.tensor([float("nan") if p.margin is None else float(p.margin) for p in held])
        summary.update(_metrics(head, held_states, held_margins, "eval"))
    summary["seconds"] = round(time.time() - started, 1)
    _save(loop, options, base_path, head, summary, precision)
    return summary


def _counter(emit, part: str, total: int):
    """A progress callback for embed_pairs that reports rows done of `total` as "states" events."""
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done += rows
        emit("states", {"part": part, "rows": done, "total": total})
    return advance


@torch.no_grad()
def _metrics(head: PreferenceHead, states: torch.Tensor, margins: torch.Tensor, prefix: str) -> dict:
    logit, margin = head(states)
    out = {f"{prefix}_accuracy": (logit > 0).float().mean().item(),
           f"{prefix}_mean_p_chosen": torch.sigmoid(logit).mean().item()}  # what the reloaded compare() averages to
    known = ~torch.isnan(margins)
    if int(known.sum()) >= 3:
        out[f"{prefix}_margin_spearman"] = spearman(margin[known].tolist(), margins[known].tolist())
    return out


def _save(loop, options, base_path: str, head: PreferenceHead, summary: dict, precision) -> None:
    from dataclasses import asdict

    from safetensors.torch import save_file

    output = Path(loop.output)
    staging = output / ".saving"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    base_ref = loop.model
    if Path(base_path).is_dir():  # the base travels with the head: the directory loads on its own
        shutil.copytree(base_path, staging / "base", ignore=shutil.ignore_patterns(".states", ".saving", "checkpoint-*"))
        base_ref = "base"
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(staging / HEAD_FILE))
    write_text(staging / "metrics.json", json.dumps(summary, indent=2))
    write_manifest(staging, ModelManifest(kind=KIND, max_length=loop.max_length, base_model=loop.model,
                                          training={"method": "preference_repr", **loop.to_dict(), **asdict(options)},
                                          precision=precision.to_dict(),
                                          extra={"base": base_ref, "dim": options.dim,
                                                 "hidden": int(head.scale.shape[0])}))
    output.mkdir(parents=True, exist_ok=True)
    if (output / "base").exists():
        shutil.rmtree(output / "base")
    for item in sorted(staging.iterdir(), key=lambda p: p.name == "rewardkit.json"):
        os.replace(item, output / item.name)
    staging.rmdir()
