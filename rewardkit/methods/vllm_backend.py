"""`--backend vllm`: score through vLLM where it and a GPU are present, and say why not elsewhere.

A Bradley–Terry directory is served as it is (its layout is what vLLM converts, see
models/vllm_layout.py); a pairwise judge is first exported as a one-logit sequence classifier
(`rewardkit export --to seq-cls`) into ~/.cache/rewardkit/vllm, keyed by its weights' digest.
The scorer's engine is then a VllmEngine (scoring/vllm_engine.py): the same requests, the same
numbers as the eager path up to vLLM's kernels. Not run on this project's CPU machines; the
mapping from vLLM's outputs to our scores is tested with a stand-in that computes what vLLM 0.33
computes from the files (tests/test_vllm_layout.py).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from rewardkit.errors import ConfigError
from rewardkit.models.vllm_layout import read_vllm_layout
from rewardkit.scoring.vllm_engine import VllmEngine

INSTALL = "pip install 'rewardkit[vllm]' (Linux with an NVIDIA GPU; written against vLLM 0.33)"


def check_vllm_available() -> None:
    """A clear error, before any model loads, when vLLM cannot run here."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(f"--backend vllm: vLLM is not installed; {INSTALL}. Use --backend eager on this machine.")
    if not torch.cuda.is_available():
        raise ConfigError("--backend vllm: vLLM needs a GPU and this machine has none (torch.cuda.is_available() is "
                          "False). Use --backend eager, or run this on a GPU machine.")


def open_vllm(directory: str, dtype: str):
    """vLLM's offline pooling runner on `directory` (what `vllm serve DIR --runner pooling` runs)."""
    from vllm import LLM

    return LLM(model=directory, runner="pooling", dtype=dtype, trust_remote_code=False)


def use_vllm(scorer, path: str, dtype: torch.dtype) -> None:
    """Switch a loaded judge or Bradley–Terry scorer to a vLLM engine, in place."""
    kind = getattr(scorer, "kind", "")
    if kind == "generative_judge":
        directory, output = _exported_judge(scorer), "verdict"
    elif kind == "bradley_terry":
        directory, output = str(path), "value"
    else:
        raise ConfigError(f"--backend vllm serves judges and Bradley–Terry models; {path} is a {kind!r} model "
                          "(use --backend eager)")
    problems = read_vllm_layout(directory).problems
    if problems:
        raise ConfigError(f"--backend vllm: {directory} is not in the layout vLLM loads: " + "; ".join(problems))
    scorer.engine = VllmEngine(open_vllm(directory, "bfloat16" if dtype == torch.bfloat16 else "float32"), output)
    scorer.backend = "vllm"


def _exported_judge(judge) -> str:
    """The judge as a seq-cls directory vLLM loads, exported once per set of weights and template."""
    import hashlib
    import shutil

    from rewardkit.methods.judge.export import export_sequence_classifier
    from rewardkit.models.backends import weights_digest

    key = hashlib.sha256((weights_digest(judge.model) + repr(judge.template)).encode()).hexdigest()[:20]
    root = Path(os.environ.get("REWARDKIT_CACHE", Path.home() / ".cache" / "rewardkit")) / "vllm"
    target = root / f"judge-{key}"
    if not (target / "config.json").is_file():
        partial = root / f".judge-{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        export_sequence_classifier(judge, partial)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(partial, target)  # a complete export or none
    return str(target)
