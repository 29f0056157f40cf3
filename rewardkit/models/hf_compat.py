"""Saved directories that older transformers read the same way.

transformers 5 writes a model's rotary settings only under `rope_parameters` and names its
tokenizer class `TokenizersBackend`; transformers 4.x (RewardBench pins 4.51) reads
`rope_theta`/`rope_scaling` — silently falling back to θ = 10,000 when they are missing, which
moves a SmolLM2 model's scores (its θ is 100,000) — and cannot resolve that tokenizer class.
`make_compatible` adds the 4.x keys beside the 5.x ones, so a directory loads to the same
numbers in every transformers version we claim (tests/test_rl_clients.py loads them in 4.46 and
4.51), and transformers 5 reads it unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardkit.files import write_text

GENERIC_FAST_TOKENIZER = "PreTrainedTokenizerFast"  # tokenizer.json + special tokens, in 4.x and 5.x


def make_compatible(directory: str | Path) -> None:
    directory = Path(directory)
    _update(directory / "config.json", _config_keys)
    _update(directory / "tokenizer_config.json", lambda c: _tokenizer_keys(c, directory))


def _config_keys(config: dict) -> dict:
    rope = config.get("rope_parameters")
    if isinstance(rope, dict) and "rope_theta" in rope and "rope_theta" not in config:
        config["rope_theta"] = rope["rope_theta"]
        if rope.get("rope_type", "default") != "default" and not config.get("rope_scaling"):
            config["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    if "dtype" in config and "torch_dtype" not in config:
        config["torch_dtype"] = config["dtype"]
    return config


def _tokenizer_keys(config: dict, directory: Path) -> dict:
    if config.get("tokenizer_class") == "TokenizersBackend" and (directory / "tokenizer.json").is_file():
        config["tokenizer_class"] = GENERIC_FAST_TOKENIZER
        # 4.x's generic class would also return token_type_ids, which a decoder's forward rejects
        config.setdefault("model_input_names", ["input_ids", "attention_mask"])
    template = directory / "chat_template.jinja"
    if template.is_file() and "chat_template" not in config:  # 4.x before 4.50 reads it only from here
        config["chat_template"] = template.read_text(encoding="utf-8")
    return config


def _update(path: Path, change) -> None:
    if not path.is_file():
        return
    before = json.loads(path.read_text(encoding="utf-8"))
    after = change(dict(before))
    if after != before:
        write_text(path, json.dumps(after, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
