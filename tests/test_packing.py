"""--packing: packed micro-batches give every backbone method the loss and gradients of padded
ones (fp32, 1e-5), shared starts are laid down once, and a backbone that ignores the packed
mask falls back to padded batches."""

from __future__ import annotations

import json
import random

import pytest
import torch

from rewardkit.errors import ConfigError
from rewardkit.training import LoopConfig, packing
from rewardkit.training.frozen_cache import decoder_states
from rewardkit.training.loop import TaskModule


def varied_pairs(count: int = 8, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": "question " * rng.randint(1, 40) + f"{i}?", "chosen": "good answer " * rng.randint(1, 25),
             "rejected": "bad wrong " * rng.randint(1, 25)} for i in range(count)]


def build_task(method: str, model_dir, attention: str = "sdpa"):
    from rewardkit.methods import get_method

    spec = get_method(method)
    loop = LoopConfig(model=str(model_dir), max_length=512, mixed_precision="no", gradient_checkpointing=False)
    task = spec.task(loop, spec.Config())
    model, _ = task.build()
    model.config._attn_implementation = attention
    return task, model


def records_for(task, rows):
    from rewardkit.data import load_pairs, load_response_pairs

    if getattr(task, "labeled", True):
        return load_pairs(rows, "auto").records
    return load_response_pairs([{"prompt": r["prompt"], "response_a": r["chosen"], "response_b": r["rejected"]}
                                for r in rows], "auto", seed=0).records


def loss_and_grads(task, model, batch, states):
    module = TaskModule(model, task, states)
    module.zero_grad()
    loss, _ = task.loss(module, batch)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}
    return loss.item(), grads


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("mode", ["rows", "shared"])
@pytest.mark.parametrize("method", ["judge", "bradley_terry", "pretrain"])
def test_packed_batches_give_the_padded_loss_and_gradients(tiny_model_dir, method, mode, attention):
    task, model = build_task(method, tiny_model_dir, attention)
    features = task.prepare(records_for(task, varied_pairs())).features
    total = sum(len(f[key]) for f in features for key in task.sequence_keys)
    collate = packing.packed_collate(task.collate, task.sequence_keys, getattr(task, "group_key", None),
                                     share=mode == "shared", capacity=total // 3, pad_id=task.tokenizer.pad_token_id)
    batch = collate(features)
    assert batch["packed_ids"].shape[0] < batch["attention_mask"].shape[0]  # several rows share a pack
    padded_loss, padded_grads = loss_and_grads(task, model, batch, decoder_states)
    packed_loss, packed_grads = loss_and_grads(task, model, batch, packing.packed_states)
    assert packed_loss == pytest.approx(padded_loss, abs=1e-5)
    assert padded_grads.keys() == packed_grads.keys() and padded_grads
    for name, grad in padded_grads.items():
        assert (packed_grads[name] - grad).abs().max().item() <= 1e-5 * max(1.0, grad.abs().max().item()), name


def test_a_pairs_shared_start_is_laid_down_once():
    # a BT feature's two rows share [5, 6, 7]; the second feature's rows share nothing
    features = [{"chosen": [5, 6, 7, 8, 9], "rejected": [5, 6, 7, 1]}, {"chosen": [2, 3], "rejected": [4]}]
    batch = packing.packed_batch(features, ("chosen", "rejected"), None, share=True, capacity=100, pad_id=0, width=5)
    ids, positions = batch["packed_ids"][0].tolist(), batch["packed_positions"][0].tolist()
    assert ids == [5, 6, 7, 8, 9, 1, 2, 3, 4]  # [prompt | chosen | rejected], then the next pair's tree
    assert positions == [0, 1, 2, 3, 4, 3, 0, 1, 0]  # the rejected branch restarts where the prompt ends
    assert batch["packed_branches"][0].tolist() == [0, 0, 0, 1, 1, 2, 1, 1, 2]  # nothing shared in the second
    assert batch["packed_segments"][0].tolist() == [0] * 6 + [1] * 3
    # every row reads its tokens where they were laid down: the rejected row of pair 0 is [5, 6, 7, 1]
    flat = batch["packed_ids"].flatten()
    assert flat[batch["packed_index"][2, :4]].tolist() == [5, 6, 7, 1]


def test_the_tree_mask_by_hand():
    segments = torch.tensor([[0, 0, 0, 0, 1, -1]])
    branches = torch.tensor([[0, 1, 2, 2, 0, 0]])  # tree 0: start, branch 1, branch 2 (two tokens); tree 1; padding
    mask = packing.attention_mask(segments, branches, "sdpa", torch.float32)[0, 0].int().tolist()
    assert mask == [[1, 0, 0, 0, 0, 0],
                    [1, 1, 0, 0, 0, 0],
                    [1, 0, 1, 0, 0, 0],  # branch 2 sees the start, not branch 1
                    [1, 0, 1, 1, 0, 0],
                    [0, 0, 0, 0, 1, 0],  # another tree sees only itself
                    [0, 0, 0, 0, 0, 1]]
    additive = packing.attention_mask(segments, branches, "eager", torch.float32)[0, 0]
    assert (additive == 0).int().tolist() == mask and additive.min().item() == torch.finfo(torch.float32).min


def test_each_row_reads_its_own_positions():
    features = [{"input_ids": [1, 2, 3], "pair": 0}, {"input_ids": [1, 2, 4, 5], "pair": 0}, {"input_ids": [7], "pair": 1}]
    batch = packing.packed_batch(features, ("input_ids",), "pair", share=True, capacity=100, pad_id=0, width=4)
    flat = batch["packed_ids"].flatten()
    for row, feature in enumerate(features):
        ids = feature["input_ids"]
        assert flat[batch["packed_index"][row, :len(ids)]].tolist() == ids


def test_common_prefix_and_first_fit_decreasing():
    assert packing.common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert packing.common_prefix([[1, 2], [1, 2]]) == 2
    assert packing.common_prefix([[9], [1]]) == 0
    trees = [packing.Tree([i], [], [[0] * n]) for i, n in enumerate([6, 5, 4, 3, 2])]
    packs = packing.pack_trees(trees, capacity=8)
    assert [sum(t.length for t in p) for p in packs] == [8, 8, 4]  # 6+2, 5+3, 4: each tree in the first pack with room
    assert all(sum(t.length for t in p) <= 8 for p in packs)


def test_a_backbone_that_ignores_the_packed_mask_falls_back_to_padded_batches(tiny_model_dir, monkeypatch):
    task, model = build_task("judge", tiny_model_dir)
    features = task.prepare(records_for(task, varied_pairs(4))).features
    choice = packing.choose_packing("shared", task, features, model, cache_frozen=False)
    assert choice.mode == "shared" and choice.difference < 1e-5
    # attention that sees every earlier token of the pack (as a kernel ignoring 4D masks would)
    monkeypatch.setattr(packing, "attention_mask", lambda segments, branches, implementation, dtype:
                        torch.ones(segments.shape[1], segments.shape[1], dtype=torch.bool).tril()[None, None]
                        .expand(segments.shape[0], 1, -1, -1))
    fallback = packing.choose_packing("shared", task, features, model, cache_frozen=False)
    assert fallback.mode == "off" and "padded batches instead" in fallback.reason and fallback.difference > 1e-3


def test_auto_packs_where_rows_share_their_start_and_records_the_choice(tmp_path, tiny_model_dir):
    from rewardkit.methods.train_config import TrainConfig, train
    from rewardkit.models.manifest import read_manifest

    long_prompts = tmp_path / "long.jsonl"
    long_prompts.write_text("".join(json.dumps(r) + "\n" for r in varied_pairs(16)))
    common = dict(model=str(tiny_model_dir), data=[str(long_prompts)], max_steps=2, batch_size=4, max_length=512,
                  save_every=1000, mixed_precision="no", gradient_checkpointing=False)
    train(TrainConfig(task="bt", output=str(tmp_path / "auto"), **common))
    used = read_manifest(tmp_path / "auto").training["packing_used"]
    assert used["mode"] == "shared" and used["saving"] > packing.AUTO_MIN_SAVING and used["reason"].startswith("auto")
    train(TrainConfig(task="pretrain", output=str(tmp_path / "pre"), **common))  # nothing shared: padded
    used = read_manifest(tmp_path / "pre").training["packing_used"]
    assert used["mode"] == "off" and used["saving"] == 0.0
    train(TrainConfig(task="bt", output=str(tmp_path / "off"), packing="off", **common))
    assert read_manifest(tmp_path / "off").training["packing_used"]["mode"] == "off"


@pytest.mark.parametrize("method", ["finetune", "bt", "pretrain"])
def test_a_packed_run_trains_what_a_padded_run_trains(tmp_path, tiny_model_dir, method):
    from safetensors.torch import load_file

    from rewardkit.methods.train_config import TrainConfig, train

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in varied_pairs(24, seed=3)))
    curves, weights = {}, {}
    for mode in ("off", "shared"):
        output = tmp_path / mode
        train(TrainConfig(task=method, model=str(tiny_model_dir), data=[str(data)], output=str(output), max_steps=3,
                          batch_size=8, lr=1e-4, max_length=512, save_every=1000, warmup_ratio=0.0, packing=mode,
                          mixed_precision="no", eval_data=[str(data)], eval_max_pairs=8))
        lines = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
        curves[mode] = [line["loss"] for line in lines if "loss" in line] + [lines[-1]["eval_accuracy"]
                                                                           if "eval_accuracy" in lines[-1] else 0.0]
        weights[mode] = load_file(output / "model.safetensors")
    assert curves["shared"] == pytest.approx(curves["off"], abs=1e-5)
    assert max((weights["shared"][k] - weights["off"][k]).abs().max().item() for k in weights["off"]) < 1e-5


def test_packing_options_are_checked():
    with pytest.raises(ConfigError, match="--packing must be auto, off, rows or shared"):
        LoopConfig(packing="tight")
    with pytest.raises(ConfigError, match="--packing shared does not work with --cache-frozen"):
        LoopConfig(packing="shared", train_layers=1, cache_frozen=True)
    assert LoopConfig(train_layers=1, cache_frozen=True).packing == "auto"  # auto turns itself off there
    with pytest.raises(ConfigError, match="--pack-tokens"):
        LoopConfig(pack_tokens=0)


def test_sharing_saving_counts_tokens_laid_down_once():
    features = [{"chosen": [1, 2, 3, 4], "rejected": [1, 2, 3, 5]}]  # 8 tokens, 3 shared: 5 laid down
    assert packing.sharing_saving(features, ("chosen", "rejected"), None) == pytest.approx(3 / 8)
    assert packing.sharing_saving([{"chosen": [1], "rejected": [2]}], ("chosen", "rejected"), None) == 0.0


def test_the_cli_takes_packing_flags_and_says_what_it_packs_with(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from rewardkit.cli.main import app
    from rewardkit.models.manifest import read_manifest

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in varied_pairs(8)))
    common = ["--model", str(tiny_model_dir), "--data", str(data), "--max-steps", "1", "--max-length", "512",
              "--mixed-precision", "no"]
    runner = CliRunner()
    done = runner.invoke(app, ["train-bt", *common, "--packing", "rows", "--pack-tokens", "600",
                               "--output", str(tmp_path / "bt")])
    assert done.exit_code == 0, done.output
    assert "packing: rows (--packing rows)" in done.output
    training = read_manifest(tmp_path / "bt").training
    assert training["packing"] == "rows" and training["pack_tokens"] == 600 and training["packing_used"]["mode"] == "rows"
    refused = runner.invoke(app, ["finetune", *common, "--packing", "tight", "--output", str(tmp_path / "j")])
    assert refused.exit_code == 2 and "--packing must be auto, off, rows or shared, got 'tight'" in refused.output
