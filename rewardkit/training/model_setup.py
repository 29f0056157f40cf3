"""Backbone for training: load, choose trainable parameters (full, LoRA, top-N layers), save."""

from __future__ import annotations

from pathlib import Path

import torch

from rewardkit.errors import ConfigError
from rewardkit.files import write_text
from rewardkit.models.hf_compat import make_compatible
from rewardkit.models.loading import load_backbone, load_tokenizer, loading, require_safetensors, resolve_model_path
from rewardkit.models.manifest import ModelManifest, write_manifest
from rewardkit.training.fsdp import unsharded_class_name
from rewardkit.training.loop_config import LoopConfig


def load_for_training(config: LoopConfig, *, value_head: bool = False, freeze_embeddings: bool = True):
    """(model, tokenizer) in train mode, fp32 unless --dtype bf16; a one-output value head
    when asked. `freeze_embeddings` is the method's default; --freeze-embeddings overrides it."""
    dtype = torch.float32 if config.dtype == "fp32" else torch.bfloat16
    if value_head:
        from transformers import AutoModelForSequenceClassification

        path = resolve_model_path(config.model)
        tokenizer = load_tokenizer(path, trust_remote_code=config.trust_remote_code)
        use_safetensors = require_safetensors(path)
        with loading(config.model):
            model = AutoModelForSequenceClassification.from_pretrained(  # safetensors only, as everywhere
                path, num_labels=1, dtype=dtype, trust_remote_code=config.trust_remote_code,
                use_safetensors=use_safetensors)
        model.config.pad_token_id = tokenizer.pad_token_id
    else:
        model, tokenizer = load_backbone(config.model, dtype=dtype, device="cpu",
                                         trust_remote_code=config.trust_remote_code)
    if config.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # transformers ≥ 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = select_trainable(model, config, value_head=value_head)
    if freeze_embeddings if config.freeze_embeddings is None else config.freeze_embeddings:
        for p in model.get_input_embeddings().parameters():
            p.requires_grad_(False)
    model.train()
    return model, tokenizer


def training_record(method: str, loop: LoopConfig, options) -> dict:
    """What rewardkit.json keeps of a run: the method, the loop options and its own options."""
    from dataclasses import asdict

    return {"method": method, **loop.to_dict(), **asdict(options)}


def select_trainable(model, config: LoopConfig, *, value_head: bool):
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, target_modules=list(config.lora_targets),
                          lora_dropout=0.0, task_type="SEQ_CLS" if value_head else "CAUSAL_LM")
        try:
            return get_peft_model(model, lora)
        except ValueError as exc:
            raise ConfigError(f"--lora-targets {config.lora_targets}: {exc}") from None
    if config.train_layers is not None:
        layers = _blocks(model)
        if not 1 <= config.train_layers <= len(layers):
            raise ConfigError(f"--train-layers must be between 1 and {len(layers)}, got {config.train_layers}")
        for p in model.parameters():
            p.requires_grad_(False)
        for block in layers[-config.train_layers:]:
            for p in block.parameters():
                p.requires_grad_(True)
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") and ".layers." not in name or name.startswith(("score", "classifier")):
                p.requires_grad_(True)
    return model


def _blocks(model):
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            return module
    raise ConfigError("--train-layers: could not find the model's transformer blocks")


def save_trained(model, tokenizer, output: str | Path, manifest: ModelManifest, *, merge_lora: bool,
                 state_dict: dict | None = None) -> Path:
    """A standard Hugging Face directory (+ rewardkit.json) in `output`. Files are written to a
    temp dir and moved in one by one; rewardkit.json goes last, so its presence marks a
    complete model."""
    import os
    import shutil

    output = Path(output)
    tmp = output / ".model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if merge_lora and hasattr(model, "merge_and_unload"):
        model.merge_and_unload().save_pretrained(tmp, safe_serialization=True)
    elif state_dict is not None:  # gathered from shards (FSDP); a peft model keeps only its adapters' part
        model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
    else:
        model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    _unsharded_architecture(tmp, model)
    make_compatible(tmp)  # the same numbers in older transformers (models/hf_compat.py)
    write_manifest(tmp, manifest)
    (output / "rewardkit.json").unlink(missing_ok=True)
    for item in sorted(tmp.iterdir(), key=lambda p: p.name == "rewardkit.json"):
        os.replace(item, output / item.name)
    tmp.rmdir()
    return output


def _unsharded_architecture(directory: Path, model) -> None:
    """config.json names the model's own class, not the FSDP<Class> that fully_shard swapped in."""
    import json

    config_file = directory / "config.json"
    if not config_file.is_file():
        return
    config = json.loads(config_file.read_text())
    sharded, plain = type(model).__name__, unsharded_class_name(model)
    if sharded != plain and config.get("architectures") == [sharded]:
        config["architectures"] = [plain]
        write_text(config_file, json.dumps(config, indent=2, sort_keys=True) + "\n")
