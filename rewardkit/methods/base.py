"""The method seam: what a reward-model method provides, and the helpers its parts share.

A *method* (one folder under `methods/`) is what a paper contributes: its options, how records
become features and batches, its loss and in-training evaluation, its scorer and the `kind` it
saves. The training loop (`training/loop.py`) and `load_reward_model` reach a method only
through these two protocols and the registry in `methods/__init__.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

import torch

from rewardkit.data.templates import PromptTemplate, load_template
from rewardkit.errors import ConfigError
from rewardkit.training.batching import shuffled_groups  # noqa: F401  (a helper for tasks' own epoch_order)

if TYPE_CHECKING:  # pragma: no cover
    from rewardkit.models.manifest import ModelManifest
    from rewardkit.scoring.protocol import RewardModel, ScorerOptions
    from rewardkit.training.loop_config import LoopConfig


@dataclass
class Prepared:
    """Features ready for batching, and what preparing them cost."""

    features: list[dict]
    truncated: int  # rows the truncation policy touched
    records: int


class TrainingTask(Protocol):
    """One training run of a method. The loop calls, in order: `read` (data is checked before
    any model loads), `build`, `prepare`, then `collate`/`loss` per step and `evaluate` on
    held-out batches, and `manifest` when saving. Each epoch's order is the loop's seeded shuffle
    that keeps features sharing `group_key` together (training/batching.py); a task may define
    `epoch_order(features, seed)` to order them otherwise."""

    # feature keys holding token sequences, in the order collate stacks them into batch rows
    # (the frozen-block cache stores one hidden-state tensor per key)
    sequence_keys: tuple[str, ...]
    tokenizer: Any  # set by build()
    # optional: features sharing this key's value must share a batch (token-budget batching keeps them whole)
    group_key: str | None

    def read(self, source: Any) -> list: ...
    def build(self) -> tuple[torch.nn.Module, Any]: ...
    def prepare(self, records: list, *, for_eval: bool = False) -> Prepared: ...
    def collate(self, features: list[dict]) -> dict: ...
    def forward(self, backbone, hidden: torch.Tensor, batch: dict) -> Any: ...
    def loss(self, forward, batch: dict) -> tuple[torch.Tensor, dict]: ...
    def evaluate(self, forward, batches: Iterable[dict]) -> dict: ...
    def manifest(self) -> "ModelManifest": ...


class Method(Protocol):
    name: str  # registry name, also `rewardkit train NAME`
    aliases: tuple[str, ...]  # older names (the `task` values of TrainConfig)
    kind: str  # written to rewardkit.json; the registry maps it back to this method
    Config: type  # a dataclass of the method's own options
    freeze_embeddings: bool  # default when LoopConfig.freeze_embeddings is None

    def task(self, loop: "LoopConfig", options: Any) -> TrainingTask: ...
    # A method fitted on frozen states instead provides `fit` and no `task`: see
    # methods/frozen_states.py (FrozenStateMethod). Optional: `data_options` names its own
    # fields that stand in for --data.
    def load_scorer(self, path: str, manifest: "ModelManifest | None", options: "ScorerOptions") -> "RewardModel": ...


def choose_template(loop: "LoopConfig", default: PromptTemplate) -> PromptTemplate:
    return load_template(loop.template) if loop.template else default


def check_length(loop: "LoopConfig", model) -> None:
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and loop.max_length > limit:
        raise ConfigError(f"--max-length {loop.max_length} exceeds the model's limit of {limit} positions")


class MethodSpec:
    """The usual way to write a `Method`: name its task class and its scorer loader.

        class MyMethod(MethodSpec):
            name, aliases, kind = "my_method", (), "my_kind"
            Config, Task = MyConfig, MyTask
            loader = staticmethod(load_my_scorer)   # (path, saved template or None, ScorerOptions)
    """

    name: str
    aliases: tuple[str, ...] = ()
    kind: str
    Config: type
    Task: type
    freeze_embeddings: bool = True
    loader: Any = None

    def task(self, loop, options):
        return self.Task(loop, options, freeze_embeddings=self.freeze_embeddings)

    def load_scorer(self, path, manifest, options):
        return type(self).loader(path, manifest.template if manifest else None, options)


class TemplatedTask:
    """The common start of a task that encodes records with a prompt template: its options,
    the template (--template or the method's default) and the backbone it trains."""

    default_template: Callable[[], PromptTemplate]
    needs_pair_slots = False  # the template must show two responses
    value_head = False  # a one-output sequence classifier instead of a causal LM
    labeled = True  # reads PreferencePairs; False: ResponsePairs (labels dropped, seeded order)

    def __init__(self, loop: "LoopConfig", options: Any, *, freeze_embeddings: bool = True):
        self.loop, self.options, self.freeze_embeddings = loop, options, freeze_embeddings
        self.template = choose_template(loop, type(self).default_template())
        if self.needs_pair_slots:
            self.template.require_pair_slots("--template")

    def read(self, source) -> list:
        from rewardkit.data import load_pairs, load_response_pairs

        if self.labeled:
            return load_pairs(source, self.loop.data_format).records
        return load_response_pairs(source, self.loop.data_format, seed=self.loop.seed).records

    def load_model(self):
        """(model, tokenizer) ready to train; the model's position limit is checked."""
        from rewardkit.training.model_setup import load_for_training

        model, self.tokenizer = load_for_training(self.loop, value_head=self.value_head,
                                                  freeze_embeddings=self.freeze_embeddings)
        check_length(self.loop, model)
        return model, self.tokenizer
