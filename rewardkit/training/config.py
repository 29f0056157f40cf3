"""One dataclass for the options of all three trainers: YAML files and CLI flags both fill it.

Unknown YAML keys are errors; every problem is reported at once, naming the flag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from rewardkit.errors import ConfigError

TASKS = ("pretrain", "finetune", "bt")


@dataclass
class TrainConfig:
    task: str = "finetune"  # pretrain | finetune | bt
    model: str = "smollm2-135m"  # built-in name, local directory or hub id
    data: list[str] = field(default_factory=list)
    output: str = "runs/out"
    eval_data: list[str] = field(default_factory=list)
    data_format: str = "auto"
    max_pairs: int | None = None  # use only the first N pairs (after a seeded shuffle)
    epochs: float = 1.0
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    lr: float = 2e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 1024
    label_smoothing: float = 0.1  # finetune
    both_orders: bool = True  # finetune: every pair in both presentation orders
    use_margin: bool = False  # bt: subtract the pair's margin when present
    center_rewards: float = 0.0  # bt: reward-centring coefficient
    template: str | None = None  # path to a template file (YAML/JSON/text)
    lora: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    merge_lora: bool = False
    train_layers: int | None = None  # partial fine-tuning: train only the top N blocks (+ norm/head)
    # with train_layers: run the frozen blocks below once per row and reuse their output every epoch
    cache_frozen: bool = False
    dtype: str = "fp32"  # precision of the stored weights (fp32 | bf16)
    mixed_precision: str = "auto"  # auto: bf16 autocast where the device computes bf16 natively; no | bf16
    gradient_checkpointing: bool = True  # recompute activations in backward: ~10% slower, far less memory
    # input embeddings (tied to the LM head in small models) stay fixed; None = yes for the judge
    # and BT (they read 2 head rows or none), no for pretrain (its LM loss needs the whole head)
    freeze_embeddings: bool | None = None
    eval_every: int = 0  # steps; 0 = only at the end
    eval_max_pairs: int = 200
    save_every: int = 50  # steps between checkpoints
    log_every: int = 1
    seed: int = 0
    resume: bool = False
    trust_remote_code: bool = False

    def __post_init__(self):
        problems = []
        if self.task not in TASKS:
            problems.append(f"task: must be one of {TASKS}, got {self.task!r}")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        for name in ("batch_size", "grad_accum", "max_length", "lora_rank", "save_every", "log_every"):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be ≥ 1, got {getattr(self, name)}")
        if self.lr <= 0:
            problems.append(f"--lr must be > 0, got {self.lr}")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"--max-steps must be ≥ 1, got {self.max_steps}")
        if self.epochs <= 0:
            problems.append(f"--epochs must be > 0, got {self.epochs}")
        if self.dtype not in ("fp32", "bf16"):
            problems.append(f"--dtype must be fp32 or bf16, got {self.dtype!r}")
        if self.mixed_precision not in ("auto", "no", "bf16"):
            problems.append(f"--mixed-precision must be auto, no or bf16, got {self.mixed_precision!r}")
        if self.lora and self.train_layers is not None:
            problems.append("--lora and --train-layers cannot be combined; choose one")
        if self.cache_frozen and self.train_layers is None:
            problems.append("--cache-frozen needs --train-layers N (only the top N blocks train)")
        if self.cache_frozen and self.freeze_embeddings is False:
            problems.append("--cache-frozen needs frozen input embeddings (the bottom blocks' output must not change)")
        if problems:
            raise ConfigError("invalid training options:\n  " + "\n  ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)


def load_config(path: str | Path | None, overrides: dict, task: str) -> TrainConfig:
    """YAML values first, then flags the user actually gave (None means 'not given')."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: must be a mapping of option: value")
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise ConfigError(f"--config {path}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["task"] = task
    for key in ("data", "eval_data", "lora_targets"):
        if isinstance(values.get(key), str):
            values[key] = [values[key]]
    config = TrainConfig(**values)
    if not config.data:
        raise ConfigError("--data: give at least one data file")
    return config
