"""One explicit accelerate loop for every task: data order, accumulation, logging, eval,
atomic checkpoints and exact resume. Runs unchanged under `accelerate launch` (DDP, FSDP,
DeepSpeed): each process gets its shard of every global batch from accelerate's dataloader.

Data order is a pure function of (seed, epoch), so a resumed run rebuilds the same order and
skips the batches it has already consumed; with the optimizer, scheduler and RNG restored
it ends where an uninterrupted run ends.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from rewardkit.errors import ConfigError
from rewardkit.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from rewardkit.training.config import TrainConfig
from rewardkit.training.metrics_log import MetricsLog, plot_metrics
from rewardkit.training.model_setup import save_trained
from rewardkit.training.tasks import TaskModule, batch_tokens

Event = Callable[[str, dict], None]


def _records(task, paths, config: TrainConfig, limit: int | None, what: str):
    records = task.load_records(paths)
    if not records:
        raise ConfigError(f"{what}: no usable pairs in {', '.join(paths)}")
    if limit is not None and limit < len(records):
        random.Random(config.seed).shuffle(records)
        records = records[:limit]
    return records


def run_training(config: TrainConfig, task, on_event: Event | None = None) -> dict:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    emit = on_event or (lambda kind, data: None)
    # Accelerate keeps one global state per process; a second run in the same process (the
    # demo trains a judge and then a BT model) may ask for another precision, so start afresh.
    # The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    # cpu=True lets torchrun start gloo DDP on machines without GPUs; with GPUs, accelerate decides
    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum, cpu=not torch.cuda.is_available(),
                              mixed_precision=_mixed_precision(config))
    set_seed(config.seed)
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)

    backbone, tokenizer = task.build()
    model = TaskModule(backbone, task.compute)
    train = task.prepare(_records(task, config.data, config, config.max_pairs, "--data"))
    evals = task.prepare(_records(task, config.eval_data, config, config.eval_max_pairs, "--eval-data"),
                         both_orders=True) if config.eval_data else None
    emit("data", {"records": train.records, "features": len(train.features), "truncated": train.truncated})
    if config.cache_frozen:  # before prepare(): the views share the backbone's modules
        _cache_frozen(task, backbone, [train.features] + ([evals.features] if evals else []), config, accelerator, emit)

    per_step = config.batch_size * config.grad_accum * accelerator.num_processes
    steps_per_epoch = max(1, math.ceil(len(train.features) / per_step))
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=int(config.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)

    state = {"step": 0, "epoch": 0, "batches_in_epoch": 0}
    checkpoint = latest_checkpoint(output) if config.resume else None
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, accelerator.unwrap_model(model), optimizer, scheduler)
        emit("resume", {"checkpoint": str(checkpoint), **state})
    log = MetricsLog(output, resume_step=state["step"], enabled=accelerator.is_main_process)
    (output / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    emit("start", {"total_steps": total_steps, "step": state["step"], "steps_per_epoch": steps_per_epoch})

    if evals is not None and state["step"] == 0:  # the starting point, to compare the trained model against
        baseline = _evaluate(task, model, evals, config, accelerator)
        log.write({"step": 0, **baseline})
        emit("eval", {"step": 0, **baseline})
    last_loss = float("nan")
    tokens, tick = 0, time.perf_counter()
    while state["step"] < total_steps:
        loader = _epoch_loader(train.features, task, config, state["epoch"], accelerator)
        if state["batches_in_epoch"]:
            loader = accelerator.skip_first_batches(loader, state["batches_in_epoch"])
        for batch in loader:
            with accelerator.accumulate(model):
                loss, metrics = task.loss(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                optimizer.zero_grad()
            tokens += batch_tokens(batch)
            state["batches_in_epoch"] += 1
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            state["step"] += 1
            last_loss = accelerator.gather(loss.detach()[None]).mean().item()
            elapsed = time.perf_counter() - tick
            record = {"step": state["step"], "epoch": state["epoch"], "loss": last_loss,
                      "lr": scheduler.get_last_lr()[0], "tokens_per_s": tokens * accelerator.num_processes / max(elapsed, 1e-9),
                      **metrics}
            tokens, tick = 0, time.perf_counter()
            if evals is not None and config.eval_every and state["step"] % config.eval_every == 0:
                record.update(_evaluate(task, model, evals, config, accelerator))
            if state["step"] % config.log_every == 0 or "eval_accuracy" in record:
                log.write(record)
            emit("step", record)
            if state["step"] % config.save_every == 0 and state["step"] < total_steps:
                _checkpoint(accelerator, output, model, optimizer, scheduler, state)
            if state["step"] >= total_steps:
                break
        else:
            state["epoch"] += 1
            state["batches_in_epoch"] = 0

    summary = {"steps": state["step"], "final_loss": last_loss, "truncated_rows": train.truncated,
               "train_features": len(train.features)}
    if evals is not None:
        summary.update({f"initial_{k}": v for k, v in baseline.items()} if checkpoint is None else {})
        summary.update(_evaluate(task, model, evals, config, accelerator))
        log.write({"step": state["step"], **{k: v for k, v in summary.items() if k.startswith("eval_")}})
    accelerator.wait_for_everyone()
    # every rank takes part: under FSDP / ZeRO-3 this gathers the sharded weights into one state dict
    full_state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        backbone_state = {k[len("backbone."):]: v for k, v in full_state.items() if k.startswith("backbone.")}
        save_trained(accelerator.unwrap_model(model).backbone, tokenizer, output, task.manifest(config),
                     merge_lora=config.merge_lora, state_dict=backbone_state)
        plot_metrics(log.records(), output / "training.png")
        (output / "summary.json").write_text(json.dumps(summary, indent=2))
    emit("done", summary)
    return summary


def _cache_frozen(task, backbone, feature_sets, config: TrainConfig, accelerator, emit: Event) -> None:
    from rewardkit.training.frozen_features import attach_frozen_hidden, cached_bytes, check_distributed

    check_distributed(accelerator)
    backbone.to(accelerator.device)
    start = time.perf_counter()
    store = torch.bfloat16 if accelerator.mixed_precision == "bf16" else next(backbone.parameters()).dtype
    task.split = attach_frozen_hidden(
        backbone, feature_sets, task.sequence_keys, config.train_layers, pad_id=task.tokenizer.pad_token_id,
        batch_size=config.batch_size * 2, autocast=accelerator.autocast, store_dtype=store,
        progress=lambda done, total: emit("cache", {"rows": done, "total": total}))
    emit("cached", {"seconds": time.perf_counter() - start, "megabytes": cached_bytes(feature_sets) / 2**20})


def _mixed_precision(config: TrainConfig) -> str:
    if config.mixed_precision != "auto":
        return config.mixed_precision
    from rewardkit.models.loading import bf16_supported, choose_device

    return "bf16" if bf16_supported(choose_device()) else "no"


def _epoch_loader(features, task, config: TrainConfig, epoch: int, accelerator) -> DataLoader:
    ordered = _epoch_order(features, config.seed * 1000 + epoch)
    loader = DataLoader(ordered, batch_size=config.batch_size, shuffle=False, collate_fn=task.collate)
    return accelerator.prepare(loader)


def _epoch_order(features: list[dict], seed: int) -> list[dict]:
    """A seeded shuffle of whole pairs: a pair's two presentation orders stay next to each other,
    so every batch is order-balanced and a pure position preference earns no loss reduction."""
    groups: dict[int, list[dict]] = {}
    for index, feature in enumerate(features):
        groups.setdefault(feature.get("pair", index), []).append(feature)
    keys = list(groups)
    order = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed)).tolist()
    return [feature for i in order for feature in groups[keys[i]]]


def _evaluate(task, model, evals, config: TrainConfig, accelerator) -> dict:
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.eval()
    try:
        return task.evaluate(unwrapped.backbone, evals, config.batch_size * 2)
    finally:
        unwrapped.train()


def _checkpoint(accelerator, output, model, optimizer, scheduler, state) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_checkpoint(output, accelerator.unwrap_model(model), optimizer, scheduler, dict(state))
