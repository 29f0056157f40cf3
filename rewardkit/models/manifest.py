"""`rewardkit.json`: what a saved model directory is and how to score it.

Written next to the weights by every trainer; read by `load_reward_model`. A directory
without it is a plain causal LM and is used as a zero-shot judge with the default template.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rewardkit.errors import ModelError
from rewardkit.files import write_text

MANIFEST = "rewardkit.json"
SCHEMA_VERSION = 1


@dataclass
class ModelManifest:
    kind: str  # the saved kind; `rewardkit.methods.method_for_kind` maps it to the method that reads it
    template: dict | None = None  # PromptTemplate.to_dict() for judges and BT inputs
    label_tokens: list[str] | None = None
    label_token_ids: list[int] | None = None
    max_length: int | None = None
    base_model: str | None = None
    training: dict = field(default_factory=dict)
    # Precision.to_dict(): how training computed the scores it measured; a reload with dtype
    # "auto" scores the same way (None: an older model, scored in the machine's choice)
    precision: dict | None = None
    schema_version: int = SCHEMA_VERSION

    extra: dict = field(default_factory=dict)  # a method's own saved settings (heads, attribute names, …)

    def __post_init__(self):
        if not isinstance(self.kind, str) or not self.kind:
            raise ModelError(f"{MANIFEST}: 'kind' must be a non-empty string, got {self.kind!r}")


def write_manifest(directory: str | Path, manifest: ModelManifest) -> None:
    path = Path(directory) / MANIFEST
    write_text(path, json.dumps(asdict(manifest), indent=2, ensure_ascii=False))


def read_manifest(directory: str | Path) -> ModelManifest | None:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: must hold a JSON object (the model's kind, template, …), not {type(data).__name__}")
    data = upgrade_manifest(data)
    try:
        return ModelManifest(**data)
    except TypeError as exc:
        raise ModelError(f"{path}: {exc}") from None


def upgrade_manifest(data: dict) -> dict:
    """Bring older manifests to the current schema (none older exist yet)."""
    data.setdefault("schema_version", SCHEMA_VERSION)
    return data
