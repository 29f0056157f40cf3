"""load_reward_model: a saved directory (or any causal LM) → the scorer its method provides."""

from __future__ import annotations

from pathlib import Path

import torch

from rewardkit.methods import DEFAULT_SCORER_KIND, method_for_kind
from rewardkit.models.loading import choose_device, resolve_model_path
from rewardkit.models.manifest import read_manifest
from rewardkit.models.precision import scoring_precision, set_autocast
from rewardkit.scoring.protocol import ScorerOptions


def load_reward_model(path_or_name, dtype=None, device: str | None = None, *, max_batch_tokens: int = 8192,
                      use_prefix_cache: bool = True, max_length: int | None = None, trust_remote_code: bool = False,
                      backend: str = "eager"):
    """The RewardModel a directory's rewardkit.json names; a plain causal LM (or a built-in
    name) loads as a zero-shot judge. Rows are truncated at `max_length` when given, else at
    the model's own position limit (never at the training cap: see rewardkit.json's
    `max_length` for that). `backend` picks the decoder pass (see models/backends.py).
    `dtype`: "auto" (default) scores a trained model in the precision its training measured
    in, an untrained one in bf16 where native, else fp32; "fp32"/"bf16" force those weights."""
    if backend == "vllm":
        from rewardkit.methods.vllm_backend import check_vllm_available

        check_vllm_available()  # before any model loads
        device = "cpu"  # the PyTorch copy only feeds the export; vLLM gets the GPU
    resolved = resolve_model_path(path_or_name)
    manifest = read_manifest(resolved) if Path(resolved).is_dir() else None
    method = method_for_kind(manifest.kind if manifest else DEFAULT_SCORER_KIND)
    # dtype "auto": the precision training measured in (rewardkit.json), so reloaded scores are
    # the trained ones on any machine; an explicit dtype wins
    precision = scoring_precision(dtype, manifest.precision if manifest else None, choose_device(device))
    options = ScorerOptions(dtype=precision.weights_dtype, device=device, max_batch_tokens=max_batch_tokens,
                            use_prefix_cache=use_prefix_cache, max_length=max_length,
                            trust_remote_code=trust_remote_code, backend=backend,
                            merge_adapters=precision.autocast is None)
    scorer = method.load_scorer(resolved, manifest, options)
    if isinstance(getattr(scorer, "model", None), torch.nn.Module):  # a registered method's scorer may hold none
        set_autocast(scorer.model, precision)
    scorer.precision = precision
    if backend == "vllm":
        from rewardkit.methods.vllm_backend import use_vllm

        use_vllm(scorer, resolved, precision.weights_dtype)
    elif backend != "eager":
        from rewardkit.models.backends import apply_backend

        apply_backend(scorer, backend)
    return scorer
