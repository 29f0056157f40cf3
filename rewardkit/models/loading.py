"""Resolve a model name or path, and load tokenizer and causal LM on a chosen device/dtype.

Accepted everywhere a model is: a built-in name (`smollm2-135m`, pulled on first use), a local
Hugging Face directory, a `.gguf` file, or a hub id (for users whose machines reach a hub).
`trust_remote_code` is off unless the caller turns it on.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from rewardkit.errors import ModelError
from rewardkit.models.gguf import load_gguf  # noqa: F401  (also imported from here)
from rewardkit.models.precision import bf16_supported, choose_dtype  # noqa: F401  (also imported from here)
from rewardkit.models.registry import BUILTIN_MODELS, pull


def resolve_model_path(name_or_path: str | Path, *, pull_missing: bool = True) -> str:
    text = str(name_or_path)
    if text in BUILTIN_MODELS:
        return str(pull(text)) if pull_missing else text
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() != ".gguf":
        raise ModelError(f"model path {text} is a file; give a model directory (with config.json), a .gguf file "
                         "or a Hugging Face id")
    if path.exists():
        markers = ("config.json", "adapter_config.json", "rewardkit.json")  # rewardkit.json: a head over a saved base
        if path.is_dir() and not any((path / name).is_file() for name in markers):
            raise ModelError(f"{path} is a directory without config.json; expected a Hugging Face model directory")
        return str(path)
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelError(f"model path {text} does not exist")
    return text  # a hub id; from_pretrained reports if it cannot be reached


@contextlib.contextmanager
def loading(name) -> object:
    """What transformers raises for a model it cannot fetch or read (an unreachable or unknown
    hub id, a damaged config.json, a model_type it does not know) as one ModelError line."""
    try:
        yield
    except ModelError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ModelError(f"could not load model '{name}': {first[:400]}") from None


def choose_device(requested: str | None = None) -> torch.device:
    if requested and requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def load_tokenizer(name_or_path: str | Path, *, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    resolved = resolve_model_path(name_or_path)
    if resolved.endswith(".gguf"):
        return load_gguf(resolved)[1]
    with loading(name_or_path):
        tokenizer = AutoTokenizer.from_pretrained(resolved, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(name_or_path: str | Path, *, dtype: str | torch.dtype | None = None, device: str | None = None,
                  trust_remote_code: bool = False):
    """(model, tokenizer) for a causal LM, in eval mode on the chosen device and dtype."""
    from transformers import AutoModelForCausalLM

    resolved = resolve_model_path(name_or_path)
    target = choose_device(device)
    torch_dtype = choose_dtype(dtype, target)
    if resolved.endswith(".gguf"):
        model, tokenizer = load_gguf(resolved)
        model = model.to(torch_dtype)
    else:
        use_safetensors = require_safetensors(resolved)
        tokenizer = load_tokenizer(resolved, trust_remote_code=trust_remote_code)
        with loading(name_or_path):
            model = AutoModelForCausalLM.from_pretrained(resolved, dtype=torch_dtype, trust_remote_code=trust_remote_code,
                                                         use_safetensors=use_safetensors)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(target).eval(), tokenizer


def require_safetensors(resolved: str) -> bool | None:
    path = Path(resolved)
    if not path.is_dir():
        return None  # hub id: let transformers prefer safetensors itself
    if any(path.glob("*.safetensors")):
        return True
    raise ModelError(f"{path} has no *.safetensors weights; rewardkit does not unpickle .bin checkpoints. "
                     "Convert it with `model.save_pretrained(dir, safe_serialization=True)` in a trusted environment.")


def position_limit(model, default: int = 2048) -> int:
    """The most positions the model was built for (its `max_position_embeddings`)."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else default


def scoring_length(model, requested: int | None) -> int:
    """The row limit for scoring: what was asked for, else the model's own limit; never more
    than the model's positions (rows beyond them would index past its position table)."""
    limit = position_limit(model)
    if requested is not None and requested > limit:
        raise ModelError(f"--max-length {requested} exceeds the model's limit of {limit} positions")
    return requested or limit


def load_classifier(path: str, *, dtype=None, device: str | None = None, trust_remote_code: bool = False,
                    num_labels: int | None = None, merge: bool = True):
    """(model, tokenizer) for a `…ForSequenceClassification` directory (or a LoRA adapter over
    one), in eval mode; safetensors only."""
    from transformers import AutoModelForSequenceClassification

    if Path(path, "adapter_config.json").is_file():
        return load_adapter(path, dtype=dtype, device=device, classifier=True, merge=merge)
    require_safetensors(path)
    target = choose_device(device)
    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    extra = {} if num_labels is None else {"num_labels": num_labels}
    with loading(path):
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=choose_dtype(dtype, target),
                                                                   use_safetensors=True,
                                                                   trust_remote_code=trust_remote_code, **extra)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(target).eval(), tokenizer


def load_causal_lm_or_adapter(path: str, dtype=None, device: str | None = None, trust_remote_code: bool = False,
                              merge: bool = True):
    """A causal LM from a directory, a LoRA adapter directory (merged unless `merge` is False) or any model name."""
    if Path(path, "adapter_config.json").is_file():
        return load_adapter(path, dtype=dtype, device=device, merge=merge)
    return load_backbone(path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)


def load_adapter(path: str, *, dtype=None, device: str | None = None, classifier: bool = False, merge: bool = True):
    """A LoRA output saved without --merge-lora: base model + adapter, merged for fast scoring.
    For a classifier the adapter directory also holds the trained value head (peft saves the
    `score` module with a SEQ_CLS adapter)."""
    from peft import PeftModel

    if not Path(path, "adapter_model.safetensors").is_file():
        raise ModelError(f"{path} has no adapter_model.safetensors; rewardkit does not unpickle adapter_model.bin. "
                         "Re-save the adapter with `save_pretrained(dir, safe_serialization=True)` in a trusted "
                         "environment.")
    try:
        adapter_config = json.loads(Path(path, "adapter_config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}/adapter_config.json: not valid JSON ({exc})") from None
    base_path = adapter_config.get("base_model_name_or_path") if isinstance(adapter_config, dict) else None
    if not base_path:
        raise ModelError(f"{path}/adapter_config.json names no base model")
    target = choose_device(device)
    if classifier:
        from transformers import AutoModelForSequenceClassification

        base_dir = resolve_model_path(base_path)
        require_safetensors(base_dir)
        with loading(base_dir):
            base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, use_safetensors=True,
                                                                      dtype=choose_dtype(dtype, target))
    else:
        base, _ = load_backbone(base_path, dtype=dtype, device=str(target))
    tokenizer = load_tokenizer(path)
    with loading(path):
        model = PeftModel.from_pretrained(base, path)
    # merged: one weight per layer, fastest; unmerged: W·x + B(A·x), as training computed it —
    # under bf16 autocast the two round differently (load_reward_model keeps it unmerged there)
    model = model.merge_and_unload() if merge else model.eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(target).eval(), tokenizer
