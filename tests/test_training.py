"""Training on tiny models: loss falls, resume is exact, 2 processes match 1, outputs load."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardkit.errors import ConfigError
from rewardkit.methods.train_config import TrainConfig, load_config, train
from rewardkit.models.manifest import read_manifest


@pytest.fixture(scope="module")
def synthetic_pairs(tmp_path_factory) -> Path:
    """A learnable task: the chosen answer always carries 'good'-family words."""
    rng = random.Random(0)
    rows = []
    for i in range(48):
        rows.append({"prompt": f"question {i}?",
                     "chosen": rng.choice(["good answer", "correct and helpful", "yes sure good"]),
                     "rejected": rng.choice(["bad wrong", "sorry cannot", "harmful bad"])})
    path = tmp_path_factory.mktemp("synthetic") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(tmp_path, model_dir, data, task, **kw) -> TrainConfig:
    base = dict(task=task, model=str(model_dir), data=[str(data)], output=str(tmp_path / task), max_steps=40,
                lr=3e-3, batch_size=8, max_length=512, seed=0, save_every=1000, warmup_ratio=0.0,
                mixed_precision="no")
    base.update(kw)
    return TrainConfig(**base)


def losses(output) -> list[float]:
    return [json.loads(line)["loss"] for line in (Path(output) / "metrics.jsonl").read_text().splitlines()
            if "loss" in json.loads(line)]


@pytest.mark.parametrize("task", ["finetune", "bt", "pretrain"])
def test_loss_falls_and_model_is_saved(tmp_path, tiny_model_dir, synthetic_pairs, task):
    extra = {}
    if task == "finetune":  # a short template lets a 2-layer model find the answers in 40 steps
        short = tmp_path / "short.yaml"
        short.write_text('user: "Q: {prompt}\\nA: {response_a}\\nB: {response_b}\\nWhich is better?"\n')
        # a random tiny model's embeddings carry nothing worth freezing
        extra = {"template": str(short), "lr": 1e-2, "freeze_embeddings": False}
    cfg = config(tmp_path, tiny_model_dir, synthetic_pairs, task, eval_data=[str(synthetic_pairs)], **extra)
    summary = train(cfg)
    curve = losses(cfg.output)
    assert all(map(lambda x: x == x and abs(x) != float("inf"), curve))
    first, last = sum(curve[:5]) / 5, sum(curve[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    out = Path(cfg.output)
    manifest = read_manifest(out)
    assert manifest.kind == {"finetune": "generative_judge", "bt": "bradley_terry", "pretrain": "pretrained_generator"}[task]
    assert (out / "model.safetensors").is_file() and (out / "training.png").is_file()
    before = load_file(tiny_model_dir / "model.safetensors")
    after = load_file(out / "model.safetensors")
    shared = [k for k in before if k in after]
    assert any(not torch.equal(before[k], after[k]) for k in shared), "trainable parameters did not change"
    if task in ("finetune", "bt"):
        assert summary["eval_accuracy"] >= 0.9
    if task == "finetune":
        assert summary["eval_position_consistency"] >= 0.9


def test_resume_after_crash_matches_uninterrupted(tmp_path, tiny_model_dir, synthetic_pairs):
    steady = config(tmp_path / "a", tiny_model_dir, synthetic_pairs, "finetune", max_steps=10, save_every=4, lr=1e-3)
    train(steady)

    crashing = config(tmp_path / "b", tiny_model_dir, synthetic_pairs, "finetune", max_steps=10, save_every=4, lr=1e-3)

    class Crash(RuntimeError):
        pass

    def crash_at_7(kind, data):
        if kind == "step" and data["step"] == 7:
            raise Crash()

    with pytest.raises(Crash):
        train(crashing, on_event=crash_at_7)
    assert not (Path(crashing.output) / "rewardkit.json").exists()
    with (Path(crashing.output) / "metrics.jsonl").open("a") as log:  # a write the crash cut short (issue 34 #7)
        log.write('{"step": 7, "loss": 0.69')
    events = []
    resumed = config(tmp_path / "b", tiny_model_dir, synthetic_pairs, "finetune", max_steps=10, save_every=4,
                     lr=1e-3, resume=True)
    train(resumed, on_event=lambda kind, data: events.append((kind, data)))
    assert ("resume", 4) in [(k, d.get("step")) for k, d in events]
    assert losses(steady.output) == pytest.approx(losses(resumed.output), abs=1e-6)
    a, b = load_file(Path(steady.output) / "model.safetensors"), load_file(Path(resumed.output) / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_last_epoch_loss_is_the_mean_of_the_last_epochs_steps_and_survives_a_resume(tmp_path, tiny_model_dir,
                                                                                    synthetic_pairs):
    """summary's final_loss is one batch; last_epoch_loss averages the last epoch's steps, and a
    crash inside that epoch does not lose the steps before the checkpoint."""
    settings = dict(max_steps=10, save_every=4, lr=1e-3)  # 48 pairs, batch 8: epoch 1 holds steps 7-10
    steady = train(config(tmp_path / "a", tiny_model_dir, synthetic_pairs, "bt", **settings))
    rows = [json.loads(line) for line in (tmp_path / "a" / "bt" / "metrics.jsonl").read_text().splitlines()]
    last_epoch = [row["loss"] for row in rows if row.get("epoch") == 1]
    assert len(last_epoch) == 4
    assert steady["last_epoch_loss"] == pytest.approx(sum(last_epoch) / 4, abs=1e-9)
    assert steady["final_loss"] == pytest.approx(last_epoch[-1], abs=1e-9)

    class Crash(RuntimeError):
        pass

    def crash_at_9(kind, data):
        if kind == "step" and data["step"] == 9:  # the checkpoint at step 8 is 2 steps into epoch 1
            raise Crash()

    with pytest.raises(Crash):
        train(config(tmp_path / "b", tiny_model_dir, synthetic_pairs, "bt", **settings), on_event=crash_at_9)
    resumed = train(config(tmp_path / "b", tiny_model_dir, synthetic_pairs, "bt", resume=True, **settings))
    assert resumed["last_epoch_loss"] == pytest.approx(steady["last_epoch_loss"], abs=1e-6)


@pytest.mark.parametrize("change", [{"lr": 2e-3}, {"batch_size": 2}, {"seed": 1}, {"max_steps": 12}, "data",
                                    {"label_smoothing": 0.2}])
def test_resume_refuses_a_checkpoint_of_another_run_naming_what_changed(tmp_path, tiny_model_dir, synthetic_pairs,
                                                                          change):
    """Issue 34 #3: a checkpoint stores the fingerprint of its run; --resume with changed data or
    trajectory options is refused before a step runs, each change named; the same run resumes."""
    from rewardkit.errors import ConfigError
    from rewardkit.methods.judge import JudgeConfig
    from rewardkit.methods.train import train_method

    def run(resume=False, data=synthetic_pairs, judge=JudgeConfig(), **options):
        loop = config(tmp_path / "run", tiny_model_dir, data, "finetune", **{"max_steps": 6, "save_every": 3,
                                                                            "lr": 1e-3, "resume": resume, **options})
        return train_method("judge", replace(loop, resume=resume), judge)

    class Stop(RuntimeError):
        pass

    def stop_at_4(kind, data):
        if kind == "step" and data["step"] == 4:
            raise Stop()

    loop = config(tmp_path / "run", tiny_model_dir, synthetic_pairs, "finetune", max_steps=6, save_every=3, lr=1e-3)
    with pytest.raises(Stop):
        train_method("judge", loop, JudgeConfig(), on_event=stop_at_4)
    if change == "data":
        other = tmp_path / "other.jsonl"
        rows = Path(synthetic_pairs).read_text().splitlines()
        other.write_text("\n".join(rows[1:]) + "\n")  # one pair fewer
        with pytest.raises(ConfigError, match=r"--data \(data\):"):
            run(resume=True, data=other)
    elif "label_smoothing" in change:
        with pytest.raises(ConfigError, match="--label-smoothing: 0.1 then, 0.2 now"):
            run(resume=True, judge=JudgeConfig(**change))
    else:
        (name, value), = change.items()
        with pytest.raises(ConfigError, match=f"--{name.replace('_', '-')}: .* then, {value!r} now"):
            run(resume=True, **change)
    assert run(resume=True)["steps"] == 6  # the same run still resumes


@pytest.mark.parametrize("packing, tolerance", [("off", 1e-5), ("shared", 3e-5)])
def test_grad_accum_matches_large_batch(tmp_path, tiny_model_dir, synthetic_pairs, packing, tolerance):
    # lr 1e-3: Adam turns fp32 rounding in near-zero gradient entries into updates of order lr,
    # so at 3e-3 the two runs drift apart by ~3e-5 for that reason alone. Packed, the two runs'
    # packs hold different rows (8 pairs in one micro-batch, or 4 and 4), so attention adds in
    # another order: 1.3e-5 measured, hence its own bound
    big = config(tmp_path / "big", tiny_model_dir, synthetic_pairs, "bt", max_steps=3, batch_size=8, lr=1e-3,
                 packing=packing)
    small = config(tmp_path / "small", tiny_model_dir, synthetic_pairs, "bt", max_steps=3, batch_size=4, grad_accum=2,
                   lr=1e-3, packing=packing)
    train(big)
    train(small)
    assert losses(big.output) == pytest.approx(losses(small.output), abs=1e-6)
    a, b = load_file(Path(big.output) / "model.safetensors"), load_file(Path(small.output) / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < tolerance


def test_two_process_gloo_run_matches_one_process(tmp_path, tiny_model_dir, synthetic_pairs):
    common = ["--model", str(tiny_model_dir), "--data", str(synthetic_pairs), "--max-steps", "3",
              "--max-length", "512", "--lr", "1e-3", "--save-every", "1000", "--mixed-precision", "no"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                          "-m", "rewardkit.cli.main", "finetune", *common, "--batch-size", "4",
                          "--output", str(tmp_path / "two")], capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "rewardkit.cli.main", "finetune", *common, "--batch-size", "8",
                          "--output", str(tmp_path / "one")], capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert losses(tmp_path / "two") == pytest.approx(losses(tmp_path / "one"), abs=1e-5)
    a, b = load_file(tmp_path / "two" / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5


def test_lora_and_partial_finetuning(tmp_path, tiny_model_dir, synthetic_pairs):
    lora = config(tmp_path, tiny_model_dir, synthetic_pairs, "finetune", max_steps=3, lora=True, lora_rank=4,
                  merge_lora=True, output=str(tmp_path / "lora"))
    train(lora)
    merged = load_file(tmp_path / "lora" / "model.safetensors")
    assert not any("lora" in k for k in merged)
    partial = config(tmp_path, tiny_model_dir, synthetic_pairs, "bt", max_steps=3, train_layers=1,
                     output=str(tmp_path / "partial"))
    train(partial)
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(tmp_path / "partial" / "model.safetensors")
    assert torch.equal(before["model.layers.0.self_attn.q_proj.weight"], after["model.layers.0.self_attn.q_proj.weight"])
    assert not torch.equal(before["model.layers.1.self_attn.q_proj.weight"], after["model.layers.1.self_attn.q_proj.weight"])


def test_clear_errors(tmp_path, tiny_model_dir, synthetic_pairs):
    with pytest.raises(ConfigError, match="single tokens"):
        train(config(tmp_path, tiny_model_dir, synthetic_pairs, "finetune", template=str(_labels_file(tmp_path))))
    with pytest.raises(ConfigError, match="exceeds the model's limit"):
        train(config(tmp_path, tiny_model_dir, synthetic_pairs, "finetune", max_length=100000))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ConfigError, match="no usable pairs"):
        train(config(tmp_path, tiny_model_dir, empty, "bt"))
    with pytest.raises(ConfigError, match="--label-smoothing"):
        TrainConfig(label_smoothing=1.5)
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("lr: 0.01\nbatch_size: 2\n")
    cfg = load_config(yaml_file, {"lr": 0.5, "data": ["x.jsonl"], "batch_size": None}, "bt")
    assert cfg.lr == 0.5 and cfg.batch_size == 2 and cfg.task == "bt"


def _labels_file(tmp_path):
    path = tmp_path / "labels.yaml"
    path.write_text("user: '{prompt} {response_a} {response_b}'\nlabels: ['Assistant-A-zzzq', 'Assistant-B-zzzq']\n")
    return path


@pytest.mark.parametrize("task", ["finetune", "bt", "pretrain"])
def test_cache_frozen_trains_the_same_model(tmp_path, tiny_model_dir, synthetic_pairs, task):
    """Reusing the frozen block's output must give the run that recomputing it gives."""
    common = dict(max_steps=4, train_layers=1, gradient_checkpointing=False, freeze_embeddings=True,
                  eval_data=[str(synthetic_pairs)])
    plain = config(tmp_path, tiny_model_dir, synthetic_pairs, task, output=str(tmp_path / "plain"), **common)
    cached = config(tmp_path, tiny_model_dir, synthetic_pairs, task, output=str(tmp_path / "cached"), cache_frozen=True,
                    **common)
    a_summary, b_summary = train(plain), train(cached)
    assert losses(cached.output) == pytest.approx(losses(plain.output), abs=1e-4)
    for key in a_summary:
        if key.startswith("eval_"):
            assert b_summary[key] == pytest.approx(a_summary[key], abs=1e-4)
    a, b = load_file(tmp_path / "plain" / "model.safetensors"), load_file(tmp_path / "cached" / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4
    before = load_file(tiny_model_dir / "model.safetensors")
    top = "model.layers.1.self_attn.q_proj.weight"
    assert not torch.equal(before[top], b[top])  # the top block did train


def test_decoder_split_reproduces_the_decoder(tiny_model_dir):
    from rewardkit.models.heads import decoder_of
    from rewardkit.models.loading import load_backbone
    from rewardkit.models.split import DecoderSplit

    model, _ = load_backbone(str(tiny_model_dir), dtype=torch.float32, device="cpu")
    decoder = decoder_of(model)
    ids = torch.randint(0, 100, (3, 17))
    split = DecoderSplit(decoder, 1)
    with torch.no_grad():
        whole = decoder(input_ids=ids, use_cache=False).last_hidden_state
        assert torch.allclose(split.top(split.bottom(ids)), whole, atol=1e-5)
    assert len(decoder.layers) == 2 and isinstance(decoder.norm, torch.nn.Module)  # the views left it whole
    split.check(ids)
    with pytest.raises(ConfigError, match="between 1 and 1"):
        DecoderSplit(decoder, 2)
    decoder.embed_scale = 2.0  # a forward the split cannot reproduce is refused, not trained wrongly
    original = decoder.forward
    decoder.forward = lambda **kw: original(inputs_embeds=decoder.embed_tokens(kw.pop("input_ids")) * 2.0, **kw)
    with pytest.raises(ConfigError, match="cannot be split"):
        split.check(ids)


def test_cache_frozen_scores_evaluation_batches_as_the_whole_decoder(tiny_model_dir):
    """Evaluation rows' cached states are computed in evaluation's own batches, so the top
    blocks over them give bit for bit the whole decoder's states for that batch, under bf16
    autocast too (where a row's result moves with its batch's shape: in length order with the
    training rows, the reloaded model scored 5e-5 away from training's figure on an AVX2 CPU)."""
    from rewardkit.methods import get_method
    from rewardkit.training import LoopConfig
    from rewardkit.training.frozen_cache import FrozenBlockCache, decoder_states

    rng = random.Random(2)
    rows = [{"prompt": "question " * rng.randint(1, 30), "chosen": "good answer " * rng.randint(1, 20),
             "rejected": "bad wrong " * rng.randint(1, 20)} for _ in range(22)]
    method = get_method("bradley_terry")
    loop = LoopConfig(model=str(tiny_model_dir), max_length=512, mixed_precision="bf16", train_layers=1,
                      cache_frozen=True, freeze_embeddings=True, gradient_checkpointing=False)
    task = method.task(loop, method.Config())
    model, _ = task.build()
    train, held = task.prepare(load_records(rows[:12])).features, task.prepare(load_records(rows[12:]), for_eval=True).features
    cache = FrozenBlockCache(model, 1, task.sequence_keys, task.tokenizer.pad_token_id)
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    cache.attach([train], batch_size=4, autocast=autocast, scored_sets=[held])
    assert all(f[key + "_hidden"].shape[0] == len(f[key]) for f in train + held for key in task.sequence_keys)
    collate = cache.collate(task.collate)
    with torch.no_grad(), autocast():
        for at in range(0, len(held), 4):  # 10 rows: batches of 4, 4 and 2
            batch = collate(held[at:at + 4])
            real = batch["attention_mask"].bool()  # padding positions differ (zeros in the cache) and are never read
            assert torch.equal(cache.states(model, batch)[real], decoder_states(model, batch)[real])


def test_cache_frozen_option_errors():
    with pytest.raises(ConfigError, match="--cache-frozen needs --train-layers"):
        TrainConfig(cache_frozen=True)
    with pytest.raises(ConfigError, match="frozen input embeddings"):
        TrainConfig(cache_frozen=True, train_layers=2, freeze_embeddings=False)


def test_training_on_in_memory_data(tmp_path, tiny_model_dir, synthetic_pairs):
    import datasets

    from rewardkit import LoopConfig, train_method
    from rewardkit.errors import DataError

    rows = [json.loads(line) for line in synthetic_pairs.read_text().splitlines()]
    loop = LoopConfig(model=str(tiny_model_dir), data=datasets.Dataset.from_list(rows), eval_data=rows[:8],
                      output=str(tmp_path / "mem"), max_steps=2, max_length=512, batch_size=8, mixed_precision="no")
    summary = train_method("bradley_terry", loop)
    assert summary["steps"] == 2 and "eval_accuracy" in summary
    saved = json.loads((tmp_path / "mem" / "train_config.json").read_text())
    assert saved["data"] == "<in-memory Dataset: 48 rows>" and saved["eval_data"] == "<in-memory list: 8 rows>"
    # a bad in-memory row is reported by index and field before any model is loaded
    bad = LoopConfig(model=str(tmp_path / "no-such-model"), data=rows[:3] + [{"prompt": "q", "chosen": "a"}],
                     output=str(tmp_path / "bad"))
    with pytest.raises(DataError, match=r"<list> row 3: field 'rejected': is missing"):
        train_method("judge", bad)


def test_generic_train_command_takes_the_methods_own_flags(tmp_path, tiny_model_dir, synthetic_pairs):
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    runner = CliRunner()
    common = ["--model", str(tiny_model_dir), "--data", str(synthetic_pairs), "--max-steps", "1", "--max-length", "512",
              "--mixed-precision", "no"]
    done = runner.invoke(app, ["train", "bradley_terry", *common, "--use-margin", "--output", str(tmp_path / "bt")])
    assert done.exit_code == 0, done.output
    manifest = read_manifest(tmp_path / "bt")
    assert manifest.kind == "bradley_terry" and manifest.training["use_margin"] is True
    assert manifest.training["method"] == "bradley_terry"
    # a judge option is not a BT flag; a YAML key of another method is refused by name
    wrong = runner.invoke(app, ["train", "bradley_terry", *common, "--label-smoothing", "0.2"])
    assert wrong.exit_code == 2
    config = tmp_path / "c.yaml"
    config.write_text("label_smoothing: 0.2\n")
    refused = runner.invoke(app, ["train-bt", *common, "--config", str(config), "--output", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "label_smoothing" in refused.output
    judge = runner.invoke(app, ["train", "judge", *common, "--label-smoothing", "0.2", "--one-order",
                                "--output", str(tmp_path / "j")])
    assert judge.exit_code == 0, judge.output
    training = read_manifest(tmp_path / "j").training
    assert training["label_smoothing"] == 0.2 and training["both_orders"] is False


def test_token_budget_batches_keep_the_budget_and_the_loss(tmp_path, tiny_model_dir):
    """Bucketed batches stay within the token budget, keep a pair's two orders together, and
    give the same per-row loss as one unbucketed batch of the same rows (padding changes nothing)."""
    from rewardkit.methods.judge import JudgeConfig, JudgeTask
    from rewardkit.training import LoopConfig
    from rewardkit.training.batching import epoch_order, padded_tokens, token_budget_batches
    from rewardkit.training.frozen_cache import decoder_states
    from rewardkit.training.loop import TaskModule

    rng = random.Random(1)
    pairs = [{"prompt": "question " * rng.randint(1, 60), "chosen": "good answer " * rng.randint(1, 40),
              "rejected": "bad wrong " * rng.randint(1, 40)} for _ in range(12)]
    loop = LoopConfig(model=str(tiny_model_dir), max_length=1024, mixed_precision="no", gradient_checkpointing=False)
    task = JudgeTask(loop, JudgeConfig(label_smoothing=0.0))
    model, _ = task.build()
    features = epoch_order(task, task.prepare(load_records(pairs)).features, seed=0)
    batches = token_budget_batches(features, task.sequence_keys, 1500, seed=0, group_key="pair")
    assert sorted(i for b in batches for i in b) == list(range(len(features)))
    assert len(batches) > 1
    for batch in batches:
        assert padded_tokens(features, batch, task.sequence_keys) <= 1500 or len(batch) == 2
        assert len({features[i]["pair"] for i in batch}) * 2 == len(batch)  # whole pairs only
    module = TaskModule(model, task, decoder_states).eval()
    with torch.no_grad():
        whole = task.loss(module, task.collate(features))[0].item()
        parts = sum(task.loss(module, task.collate([features[i] for i in b]))[0].item() * len(b) for b in batches)
    assert parts / len(features) == pytest.approx(whole, abs=1e-5)


def test_training_with_a_token_budget_runs_an_epoch(tmp_path, tiny_model_dir, synthetic_pairs):
    summary = train(config(tmp_path, tiny_model_dir, synthetic_pairs, "finetune", max_steps=None, epochs=1,
                           batch_tokens=2048, eval_data=[str(synthetic_pairs)]))
    assert summary["steps"] >= 1 and summary["eval_accuracy"] is not None


def load_records(rows):
    from rewardkit.data import load_pairs

    return load_pairs(rows).records


class Planted:
    """A class in a pickle: what `weights_only` loading must refuse, for the older checkpoint."""


# the *_rehashed damages recompute the manifest's checksums afterwards (issue 34 #4): only a check
# of the tensors themselves against the model can catch them
@pytest.mark.parametrize("damage", ["truncate_weights", "empty_optimizer", "garbage_state", "no_manifest",
                                    "drop_tensor", "nan_weights", "drop_tensor_rehashed", "broadcast_shape_rehashed",
                                    "extra_tensor_rehashed", "other_dtype_rehashed", "pickle_optimizer_rehashed",
                                    "empty_file_list"])
def test_damaged_checkpoint_falls_back_to_the_older_one(tmp_path, tiny_model_dir, synthetic_pairs, damage):
    """Each file of the newest checkpoint damaged in turn: resume names it, skips it and goes on
    from the intact older checkpoint, ending at the uninterrupted run's weights; with every
    checkpoint damaged it stops with a clear error instead of a traceback."""
    from safetensors.torch import save_file

    from rewardkit.training.checkpoint import CheckpointError

    def cfg(name, **kw):
        return config(tmp_path / name, tiny_model_dir, synthetic_pairs, "bt", max_steps=6, save_every=2, lr=1e-3, **kw)

    train(cfg("steady"))

    class Crash(RuntimeError):
        pass

    def crash_at_5(kind, data):
        if kind == "step" and data["step"] == 5:
            raise Crash()

    with pytest.raises(Crash):
        train(cfg("run"), on_event=crash_at_5)
    root = tmp_path / "run" / "bt" / "checkpoints"
    newest, older = sorted(root.glob("step-*"), reverse=True)[:2]

    def spoil(checkpoint):
        weights = checkpoint / "trainable.safetensors"
        manifest_file = checkpoint / "manifest.json"
        if damage.endswith("_rehashed") or damage == "empty_file_list":
            tensors = load_file(weights)
            name = sorted(tensors)[0]
            matrix = next(k for k in sorted(tensors) if tensors[k].dim() == 2)
            if damage == "drop_tensor_rehashed":
                del tensors[name]
            elif damage == "broadcast_shape_rehashed":  # [N, 1]: copy_ would broadcast it silently
                tensors[matrix] = tensors[matrix][:, :1].contiguous()
            elif damage == "extra_tensor_rehashed":
                tensors["planted.weight"] = torch.zeros(3)
            elif damage == "other_dtype_rehashed":
                tensors[name] = tensors[name].double()
            elif damage == "pickle_optimizer_rehashed":
                torch.save({"optimizer": Planted()}, checkpoint / "optimizer.pt")
            save_file(tensors, weights)
            manifest = json.loads(manifest_file.read_text())
            manifest["files"] = {} if damage == "empty_file_list" else {
                f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(checkpoint.iterdir())
                if f.name != "manifest.json"}
            manifest_file.write_text(json.dumps(manifest))
        elif damage == "truncate_weights":
            weights.write_bytes(weights.read_bytes()[:100])
        elif damage == "empty_optimizer":
            (checkpoint / "optimizer.pt").write_bytes(b"")
        elif damage == "garbage_state":
            (checkpoint / "state.json").write_text("{not json")
        elif damage == "no_manifest":
            (checkpoint / "manifest.json").unlink()
        else:
            tensors = load_file(weights)
            name = sorted(tensors)[0]
            if damage == "drop_tensor":
                del tensors[name]
            else:
                tensors[name] = torch.full_like(tensors[name], float("nan"))
            save_file(tensors, weights)
            manifest = json.loads((checkpoint / "manifest.json").read_text())  # a consistent manifest: only
            if damage == "nan_weights":  # the content check can catch NaN weights
                manifest["files"]["trainable.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
                (checkpoint / "manifest.json").write_text(json.dumps(manifest))

    spoil(newest)
    events = []
    train(cfg("run", resume=True), on_event=lambda kind, data: events.append((kind, data)))
    skipped = [d for k, d in events if k == "checkpoint_skipped"]
    assert len(skipped) == 1 and str(newest.name) in skipped[0]["reason"]
    assert ("resume", 2) in [(k, d.get("step")) for k, d in events]
    a = load_file(tmp_path / "steady" / "bt" / "model.safetensors")
    b = load_file(tmp_path / "run" / "bt" / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6

    for checkpoint in sorted(root.glob("step-*")):
        spoil(checkpoint)
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        train(cfg("run", resume=True))


def test_bt_training_refuses_pickle_only_models(tmp_path, tiny_model_dir, synthetic_pairs):
    import shutil

    from rewardkit.errors import ModelError

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")  # only a .bin left
    with pytest.raises(ModelError, match="does not unpickle"):
        train(config(tmp_path, pickled, synthetic_pairs, "bt", max_steps=1))


def test_fitting_pairs_measures_whole_rows(tokenizer):
    """Pairs are kept by their *untruncated* judge-row length (an encoder that truncates would
    make every pair look as if it fits)."""
    from rewardkit.data.templates import default_judge_template
    from rewardkit.data.tokenize import SegmentEncoder
    from rewardkit.recipes.partial_finetune import fitting_pairs
    from rewardkit.types import PreferencePair

    short = [PreferencePair(f"q{i}", "yes", "no") for i in range(3)]
    long = PreferencePair("q", "good answer " * 300, "no")
    pairs = [short[0], long, short[1], short[2]]
    whole = SegmentEncoder(tokenizer, default_judge_template(), 10**6)
    limit = len(whole.encode("q", "yes", "no").input_ids) + 40
    assert fitting_pairs(pairs, whole, limit) == short
    assert fitting_pairs(pairs, whole, limit, count=2) == short[:2]
    capped = SegmentEncoder(tokenizer, default_judge_template(), limit)  # the mistake the bench made
    assert long in fitting_pairs(pairs, capped, limit)


def test_rewardkit_gram_runs_both_stages_the_second_from_the_first(tmp_path, tiny_model_dir, synthetic_pairs):
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    out = tmp_path / "gram"
    result = CliRunner().invoke(app, ["gram", "--model", str(tiny_model_dir), "--unlabeled", str(synthetic_pairs),
                                      "--data", str(synthetic_pairs), "--output", str(out), "--pretrain-steps", "2",
                                      "--max-steps", "2", "--max-length", "512", "--mixed-precision", "no"])
    assert result.exit_code == 0, result.output
    stage1, judge = read_manifest(tmp_path / "gram_stage1"), read_manifest(out)
    assert stage1.kind == "pretrained_generator" and judge.kind == "generative_judge"
    assert judge.base_model == str(tmp_path / "gram_stage1")  # stage 2 started from stage 1
    assert json.loads((tmp_path / "gram_stage1" / "summary.json").read_text())["steps"] == 2
    before, after = load_file(tmp_path / "gram_stage1" / "model.safetensors"), load_file(out / "model.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before if k in after)
    missing = CliRunner().invoke(app, ["gram", "--model", str(tiny_model_dir), "--data", str(synthetic_pairs),
                                       "--output", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "--unlabeled" in missing.output
