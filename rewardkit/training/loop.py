"""One explicit accelerate loop for every method: data order, accumulation, logging, eval,
atomic checkpoints and exact resume. Runs unchanged under `torchrun` / `accelerate launch`
(DDP, DeepSpeed, and FSDP2 with `--fsdp`, training/fsdp.py): each process gets its shard of
every global batch from accelerate's dataloader.

The loop knows no method. It reads records through the method's task, asks it for features,
an epoch order, batches and a loss, and evaluates with the task's own `evaluate`; the model it
trains is a `TaskModule` (backbone + the task's forward over final hidden states, which come
from the whole decoder or from the frozen-block cache).

Data order is a pure function of (seed, epoch), so a resumed run rebuilds the same order and
skips the batches it has already consumed; with the optimizer, scheduler and RNG restored
it ends where an uninterrupted run ends.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

from rewardkit.errors import ConfigError, TrainingError
from rewardkit.files import write_text
from rewardkit.models.precision import Precision
from rewardkit.training.batching import epoch_order, token_budget_batches
from rewardkit.training.checkpoint import CheckpointError, checkpoints_newest_first, load_checkpoint, save_checkpoint
from rewardkit.training.frozen_cache import FrozenBlockCache, decoder_states
from rewardkit.training.fsdp import full_state_dict, mixed_precision_forward, shard, unsharded_copy
from rewardkit.training.loop_config import LoopConfig, describe_source
from rewardkit.training.metrics_log import MetricsLog, plot_metrics
from rewardkit.training.model_setup import save_trained
from rewardkit.training.packing import choose_packing, packed_collate, packed_states, pad_id_of
from rewardkit.training.run_fingerprint import check_same_run, run_fingerprint
from rewardkit.training.sharded_checkpoint import load_sharded_checkpoint, save_sharded_checkpoint

Event = Callable[[str, dict], None]


class TaskModule(torch.nn.Module):
    """Backbone + the task's forward, as one module: under DDP/FSDP the forward must pass
    through the wrapper that accelerate puts around this module for gradients to sync."""

    def __init__(self, backbone, task, states: Callable[[Any, dict], torch.Tensor]):
        super().__init__()
        self.backbone = backbone
        self.task, self.states = task, states

    def forward(self, batch: dict):
        return self.task.forward(self.backbone, self.states(self.backbone, batch), batch)


@dataclass
class Run:
    """Everything one training run holds, passed between the phases below."""

    loop: LoopConfig
    task: Any
    accelerator: Any
    emit: Event
    output: Path
    train: Any = None  # Prepared
    evals: Any = None  # Prepared or None
    collate: Callable | None = None  # training micro-batches (packed under --packing)
    eval_collate: Callable | None = None  # evaluation batches: always padded, as every scoring path
    packing: Any = None  # PackingChoice
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    trainable: list = field(default_factory=list)
    total_steps: int = 0
    steps_per_epoch: int = 1
    state: dict = field(default_factory=lambda: {"step": 0, "epoch": 0, "batches_in_epoch": 0})
    resumed_from: Path | None = None
    log: MetricsLog | None = None
    fsdp: bool = False  # the loop shards the model itself (--fsdp, training/fsdp.py)
    sharded: bool = False  # the model is sharded, by the loop or by accelerate's FSDP plugin
    window: list = field(default_factory=lambda: [0.0, 0])  # this step's Σ loss·items and Σ items so far


def run_training(method, loop: LoopConfig, options, on_event: Event | None = None) -> dict:
    """Train `method` with the shared `loop` options and its own `options`; returns the summary."""
    task = method.task(loop, options)
    emit = on_event or (lambda kind, data: None)
    train_records = _records(task, loop.data, loop, loop.max_pairs, "--data")  # bad data fails before any model loads
    eval_records = _records(task, loop.eval_data, loop, loop.eval_max_pairs, "--eval-data") if loop.eval_data else None
    run = Run(loop, task, _accelerator(loop), emit, Path(loop.output))
    run.state["run"] = run_fingerprint(loop, options, train_records)  # saved with every checkpoint
    # one process sharded over itself only when a process group is already set up (the GPU check)
    run.fsdp = loop.fsdp and (run.accelerator.num_processes > 1 or torch.distributed.is_initialized())
    # accelerate's own FSDP (`accelerate launch --config_file examples/accelerate/fsdp.yaml`, GPUs)
    # shards the model in prepare(); checkpoints and the final save then take the sharded path too
    run.sharded = run.fsdp or str(run.accelerator.distributed_type).endswith("FSDP")
    run.output.mkdir(parents=True, exist_ok=True)
    backbone, tokenizer = task.build()
    _prepare_data(run, backbone, train_records, eval_records)
    _prepare_optimization(run)
    _resume(run)
    baseline = _evaluate(run) if run.evals is not None and run.state["step"] == 0 else None
    if baseline:
        run.log.write({"step": 0, **baseline})
        emit("eval", {"step": 0, **baseline})
    last_loss = _train_steps(run)
    return _finish(run, tokenizer, last_loss, baseline)


def _accelerator(loop: LoopConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed

    # Accelerate keeps one global state per process; a second run in the same process (the
    # demo trains a judge and then a BT model) may ask for another precision, so start afresh.
    # The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    # cpu=True lets torchrun start gloo DDP on machines without GPUs; with GPUs, accelerate decides
    accelerator = Accelerator(gradient_accumulation_steps=loop.grad_accum, cpu=not torch.cuda.is_available(),
                              mixed_precision=_mixed_precision(loop))
    set_seed(loop.seed)
    return accelerator


def _records(task, source, loop: LoopConfig, limit: int | None, what: str) -> list:
    records = task.read(source)
    if not records:
        raise ConfigError(f"{what}: no usable pairs in {describe_source(source)}")
    if limit is not None and limit < len(records):
        random.Random(loop.seed).shuffle(records)
        records = records[:limit]
    return records


def _prepare_data(run: Run, backbone, train_records: list, eval_records: list | None) -> None:
    """Features for both sets; with --cache-frozen, the bottom blocks' states attached."""
    task = run.task
    run.train = task.prepare(train_records)
    run.evals = task.prepare(eval_records, for_eval=True) if eval_records else None
    run.emit("data", {"records": run.train.records, "features": len(run.train.features),
                      "truncated": run.train.truncated})
    states, run.collate = decoder_states, task.collate
    if run.loop.cache_frozen:
        cache = _frozen_cache(run, backbone)
        states, run.collate = cache.states, cache.collate(task.collate)
    run.eval_collate = run.collate
    run.packing = choose_packing(run.loop.packing, task, run.train.features, backbone, cache_frozen=run.loop.cache_frozen)
    run.emit("packing", run.packing.to_dict())
    if run.packing.mode != "off":
        states = packed_states
        run.collate = packed_collate(task.collate, task.sequence_keys, getattr(task, "group_key", None),
                                     share=run.packing.mode == "shared",
                                     capacity=run.loop.pack_tokens or run.loop.max_length, pad_id=pad_id_of(task))
    run.model = TaskModule(backbone, task, states)


def _frozen_cache(run: Run, backbone) -> FrozenBlockCache:
    FrozenBlockCache.check_distributed(run.accelerator)
    backbone.to(run.accelerator.device)
    cache = FrozenBlockCache(backbone, run.loop.train_layers, run.task.sequence_keys, run.task.tokenizer.pad_token_id)
    info = cache.attach([run.train.features], batch_size=_eval_batch_size(run), autocast=run.accelerator.autocast,
                        scored_sets=[run.evals.features] if run.evals else [],
                        progress=lambda done, total: run.emit("cache", {"rows": done, "total": total}))
    run.emit("cached", info)
    return cache


def _prepare_optimization(run: Run) -> None:
    from transformers import get_scheduler

    loop = run.loop
    if loop.batch_tokens:  # the number of batches depends on the lengths: count epoch 0's
        per_epoch = len(_budget_batches(run, epoch_order(run.task, run.train.features, _epoch_seed(run, 0)), 0))
        steps_per_epoch = max(1, math.ceil(per_epoch / (loop.grad_accum * run.accelerator.num_processes)))
    else:
        per_step = loop.batch_size * loop.grad_accum * run.accelerator.num_processes
        steps_per_epoch = max(1, math.ceil(len(run.train.features) / per_step))
    run.total_steps = loop.max_steps or max(1, math.ceil(loop.epochs * steps_per_epoch))
    if run.fsdp:  # sharded here, before the optimizer sees the (now sharded) parameters
        shard(run.model, run.accelerator.device)
        if run.accelerator.mixed_precision == "bf16":
            mixed_precision_forward(run.model, run.accelerator.device)
    run.trainable = [p for p in run.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(run.trainable, lr=loop.lr, weight_decay=loop.weight_decay)
    run.scheduler = get_scheduler("linear", optimizer, num_warmup_steps=int(loop.warmup_ratio * run.total_steps),
                                  num_training_steps=run.total_steps)
    if run.fsdp:
        run.optimizer = run.accelerator.prepare(optimizer)
    else:
        run.model, run.optimizer = run.accelerator.prepare(run.model, optimizer)
    run.steps_per_epoch = steps_per_epoch


def _resume(run: Run) -> None:
    """From the newest intact checkpoint; a damaged one is reported and the older one used."""
    candidates = checkpoints_newest_first(run.output) if run.loop.resume else []
    problems, fingerprint = [], run.state["run"]
    for checkpoint in candidates:
        try:
            if run.sharded:  # every process reads its own shard
                run.state = load_sharded_checkpoint(checkpoint, run.model, run.optimizer.optimizer, run.scheduler)
            else:
                run.state = load_checkpoint(checkpoint, run.accelerator.unwrap_model(run.model), run.optimizer,
                                            run.scheduler)
        except CheckpointError as exc:
            problems.append(str(exc))
            run.emit("checkpoint_skipped", {"checkpoint": str(checkpoint), "reason": str(exc)})
            continue
        check_same_run(run.state.get("run"), fingerprint, checkpoint)
        run.state["run"] = fingerprint
        run.resumed_from = checkpoint
        run.emit("resume", {"checkpoint": str(checkpoint), **run.state})
        break
    if problems and run.resumed_from is None:
        raise CheckpointError("--resume: no intact checkpoint in " + str(run.output / "checkpoints") + ":\n  "
                              + "\n  ".join(problems) + "\n(start afresh without --resume, or in another --output)")
    run.log = MetricsLog(run.output, resume_step=run.state["step"], enabled=run.accelerator.is_main_process)
    write_text(run.output / "train_config.json", json.dumps(run.loop.to_dict(), indent=2))
    run.emit("start", {"total_steps": run.total_steps, "step": run.state["step"], "steps_per_epoch": run.steps_per_epoch})


def _train_steps(run: Run) -> float:
    """Optimizer steps until `total_steps`; returns the last step's loss."""
    last_loss, tokens, rows, tick = float("nan"), 0, 0, time.perf_counter()
    state = run.state
    while state["step"] < run.total_steps:
        loader = _epoch_loader(run)
        if state["batches_in_epoch"]:
            loader = run.accelerator.skip_first_batches(loader, state["batches_in_epoch"])
        for batch in loader:
            step_loss, metrics = _micro_step(run, batch)
            tokens += int(batch["attention_mask"].sum().item())
            rows += int(batch["attention_mask"].shape[0])
            state["batches_in_epoch"] += 1
            if not run.accelerator.sync_gradients:
                continue
            run.scheduler.step()
            state["step"] += 1
            last_loss = step_loss
            if not math.isfinite(last_loss):
                raise TrainingError(f"step {state['step']}: the loss is {last_loss}; stopping before the weights are "
                                    "saved (check the data for extreme values, or lower --lr)")
            epoch_loss = state.setdefault("epoch_loss", [0.0, 0])  # checkpointed with the step: resume keeps it
            epoch_loss[0], epoch_loss[1] = epoch_loss[0] + last_loss, epoch_loss[1] + 1
            elapsed = time.perf_counter() - tick
            record = {"step": state["step"], "epoch": state["epoch"], "loss": last_loss, "rows": rows,
                      "lr": run.scheduler.get_last_lr()[0],
                      "tokens_per_s": tokens * run.accelerator.num_processes / max(elapsed, 1e-9), **metrics}
            tokens, rows, tick = 0, 0, time.perf_counter()
            _after_step(run, record)
            if state["step"] >= run.total_steps:
                break
        else:
            state["epoch"] += 1
            state["batches_in_epoch"] = 0
            state["epoch_loss"] = [0.0, 0]
    return last_loss


def _micro_step(run: Run, batch: dict):
    """One micro-batch. The loss of an optimizer step is the mean over every loss item (row, or
    token for the generative loss) of all its micro-batches on all processes, whatever their
    sizes: each micro-batch's mean is weighted by its items in backward and the gradients are
    rescaled once the step's item count is known, so N processes, gradient accumulation and
    token-budget batches all train what one large batch would. Returns (the step's loss once
    the step is complete, else None; the task's metrics)."""
    items = loss_items(run.task, batch)
    # DeepSpeed's engine owns (and partitions) the gradients, so there each micro-batch's mean is
    # used as it is: the rescaling below needs the gradients in the parameters
    weighted = not str(run.accelerator.distributed_type).endswith("DEEPSPEED")
    with run.accelerator.accumulate(run.model):
        loss, metrics = run.task.loss(run.model, batch)
        run.accelerator.backward(loss * items if weighted else loss)
        run.window[0] += loss.detach().float().item() * items
        run.window[1] += items
        step_loss = None
        if run.accelerator.sync_gradients:
            step_loss = _rescale_gradients(run, apply=weighted)
            run.accelerator.clip_grad_norm_(run.trainable, 1.0)
        run.optimizer.step()
        run.optimizer.zero_grad()
    return step_loss, metrics


def loss_items(task, batch: dict) -> int:
    """How many items a micro-batch's mean loss is over: the task's `loss_items(batch)`, else its rows."""
    counter = getattr(task, "loss_items", None)
    return int(counter(batch)) if counter is not None else int(batch["attention_mask"].shape[0])


def _rescale_gradients(run: Run, *, apply: bool = True) -> float:
    """Turn the accumulated Σ items·∇mean (averaged over processes, divided by accumulation
    steps) into the gradient of the mean over the step's items; returns that mean loss."""
    accelerator = run.accelerator
    totals = torch.tensor([run.window[0], float(run.window[1])], dtype=torch.float64, device=accelerator.device)
    loss_sum, count = accelerator.reduce(totals, reduction="sum").tolist()
    run.window = [0.0, 0]
    count = max(count, 1.0)
    factor = accelerator.num_processes * run.loop.grad_accum / count
    for parameter in run.trainable if apply else ():
        if parameter.grad is not None:
            parameter.grad.mul_(factor)
    return loss_sum / count


def _after_step(run: Run, record: dict) -> None:
    """Evaluate, log, report and checkpoint as the options ask."""
    step, loop = record["step"], run.loop
    evaluated = run.evals is not None and loop.eval_every and step % loop.eval_every == 0
    if evaluated:
        record.update(_evaluate(run))
    if step % loop.log_every == 0 or evaluated:
        run.log.write(record)
    run.emit("step", record)
    if step % loop.save_every == 0 and step < run.total_steps and run.sharded:
        save_sharded_checkpoint(run.output, run.model, run.optimizer.optimizer, run.scheduler, dict(run.state))
    elif step % loop.save_every == 0 and step < run.total_steps:
        run.accelerator.wait_for_everyone()
        if run.accelerator.is_main_process:
            save_checkpoint(run.output, run.accelerator.unwrap_model(run.model), run.optimizer, run.scheduler,
                            dict(run.state))


def _finish(run: Run, tokenizer, last_loss: float, baseline: dict | None) -> dict:
    loss_sum, loss_steps = run.state.get("epoch_loss", [0.0, 0])
    # final_loss is one batch's; the last epoch's mean says whether training fitted its data
    summary = {"steps": run.state["step"], "final_loss": last_loss,
               "last_epoch_loss": loss_sum / loss_steps if loss_steps else last_loss,
               "truncated_rows": run.train.truncated, "train_features": len(run.train.features)}
    if run.evals is not None:
        if baseline and run.resumed_from is None:
            summary.update({f"initial_{k}": v for k, v in baseline.items()})
        final = _evaluate(run)
        summary.update(final)
        run.log.write({"step": run.state["step"], **final})
    summary.update(getattr(run.task, "summary_extras", dict)())  # e.g. MORE's mean source weights
    _config_updates(run)
    accelerator = run.accelerator
    accelerator.wait_for_everyone()
    # every rank takes part: under FSDP / ZeRO-3 this gathers the sharded weights into one state dict
    full_state = full_state_dict(run.model) if run.sharded else accelerator.get_state_dict(run.model)
    if accelerator.is_main_process:
        backbone_state = {k[len("backbone."):]: v for k, v in full_state.items() if k.startswith("backbone.")}
        manifest = run.task.manifest()
        manifest.training["packing_used"] = run.packing.to_dict()  # what --packing resolved to, and why
        # how the evaluation above computed: a reload scores the same way (models/precision.py)
        manifest.precision = Precision(run.loop.dtype, "bf16" if accelerator.mixed_precision == "bf16" else None).to_dict()
        model = accelerator.unwrap_model(run.model).backbone
        if run.sharded and run.loop.lora and run.loop.merge_lora:  # merging needs whole weights, not shards
            model = unsharded_copy(run.task, backbone_state)
        save_trained(model, tokenizer, run.output, manifest, merge_lora=run.loop.merge_lora,
                     state_dict=backbone_state)
        plot_metrics(run.log.records(), run.output / "training.png")
        write_text(run.output / "summary.json", json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()  # what runs next on any process may load the saved model
    run.emit("done", summary)
    return summary


def _config_updates(run: Run, sample: int = 256) -> None:
    """A method may measure something on its trained model for the saved `config.json` (the
    Bradley–Terry reward mean/std that OpenRLHF's normalisation reads): `saved_config(forward,
    batches)` on up to `sample` training records."""
    describe = getattr(run.task, "saved_config", None)
    if describe is None:
        return
    unwrapped = run.accelerator.unwrap_model(run.model)
    features, size = run.train.features[:sample], _eval_batch_size(run)
    unwrapped.eval()
    try:
        updates = describe(unwrapped, (run.eval_collate(features[i:i + size]) for i in range(0, len(features), size)))
    finally:
        unwrapped.train()
    for key, value in updates.items():
        setattr(unwrapped.backbone.config, key, value)


def _mixed_precision(loop: LoopConfig) -> str:
    return "bf16" if loop.precision().autocast == "bf16" else "no"


def _epoch_seed(run: Run, epoch: int) -> int:
    return run.loop.seed * 1000 + epoch


def _epoch_loader(run: Run) -> DataLoader:
    epoch = run.state["epoch"]
    ordered = epoch_order(run.task, run.train.features, _epoch_seed(run, epoch))
    if run.loop.batch_tokens:
        loader = DataLoader(ordered, batch_sampler=_budget_batches(run, ordered, epoch), collate_fn=run.collate)
    else:
        loader = DataLoader(ordered, batch_size=run.loop.batch_size, shuffle=False, collate_fn=run.collate)
    return run.accelerator.prepare(loader)


def _budget_batches(run: Run, ordered: list[dict], epoch: int) -> list[list[int]]:
    return token_budget_batches(ordered, run.task.sequence_keys, run.loop.batch_tokens, seed=_epoch_seed(run, epoch),
                                group_key=getattr(run.task, "group_key", None))


def _eval_batch_size(run: Run) -> int:
    """Features per scoring batch in training (evaluation, saved statistics); the frozen-block
    cache computes evaluation rows in these batches."""
    return run.loop.batch_size * 2


def _evaluate(run: Run) -> dict:
    unwrapped = run.accelerator.unwrap_model(run.model)
    features, size = run.evals.features, _eval_batch_size(run)
    batches = (run.eval_collate(features[i:i + size]) for i in range(0, len(features), size))
    unwrapped.eval()
    try:
        return run.task.evaluate(unwrapped, batches)
    finally:
        unwrapped.train()


def evaluate_each(method, loop: LoopConfig, options, records: list) -> list[dict]:
    """The method's in-training evaluation run on one record at a time, exactly as the loop
    runs it (the task's own features, the accelerator's precision wrapper, the decoder pass):
    per record, the dict `task.evaluate` returns — the per-row view of training-time scores
    that `rewardkit parity` sets beside the other ways a saved model is scored."""
    task = method.task(loop, options)
    backbone, _ = task.build()
    accelerator = _accelerator(loop)
    prepared = task.prepare(records, for_eval=True)
    model = accelerator.unwrap_model(accelerator.prepare(TaskModule(backbone, task, decoder_states)))
    model.eval()
    key = getattr(task, "group_key", None)
    groups: dict = {}
    for index, feature in enumerate(prepared.features):
        groups.setdefault(feature[key] if key else index, []).append(feature)
    if len(groups) != len(records):
        raise TrainingError(f"{method.name}: {len(records)} records made {len(groups)} evaluation groups; "
                            "per-record evaluation needs one group per record")
    return [task.evaluate(model, [task.collate(features)]) for features in groups.values()]
