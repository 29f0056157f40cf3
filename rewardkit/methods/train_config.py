"""TrainConfig: the flat options of `rewardkit pretrain|finetune|train-bt` and their YAML files,
and `configs_for`, which reads any method's options from YAML and flags.

It is the shared loop options (`LoopConfig`) plus `task` (a method name or alias) and the
options of the three original methods, kept flat because commands, YAML files and Python
callers use them that way. `parts()` splits it into (method, loop options, method options).
New methods take their own config through `rewardkit train METHOD` / `train_method` instead of
growing this class.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from rewardkit.config_files import read_mapping
from rewardkit.errors import ConfigError
from rewardkit.methods import get_method
from rewardkit.training.loop import run_training
from rewardkit.training.loop_config import LoopConfig, option

# the original methods' own options; None = the method's default (documented in methods/<name>/config.py)
METHOD_FIELDS = ("label_smoothing", "both_orders", "use_margin", "center_rewards")


@dataclass
class TrainConfig(LoopConfig):
    task: str = option("finetune", "method name or alias: pretrain | finetune (judge) | bt (bradley_terry)")
    label_smoothing: float | None = option(None, "judge: see JudgeConfig")
    both_orders: bool | None = option(None, "judge: see JudgeConfig")
    use_margin: bool | None = option(None, "bradley_terry: see BradleyTerryConfig")
    center_rewards: float | None = option(None, "bradley_terry: see BradleyTerryConfig")

    def __post_init__(self):
        problems = self.problems()
        try:
            self.parts()
        except ConfigError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError("invalid training options:\n  " + "\n  ".join(problems))

    def parts(self):
        """(method, LoopConfig, the method's own config) for the training loop."""
        method = get_method(self.task)
        own = {f.name for f in fields(method.Config)}
        given = {name: getattr(self, name) for name in METHOD_FIELDS if getattr(self, name) is not None}
        stray = sorted(set(given) - own)
        if stray:
            raise ConfigError(f"{', '.join('--' + s.replace('_', '-') for s in stray)}: not an option of method "
                              f"'{method.name}' (its options: {', '.join(sorted(own)) or 'none'})")
        loop = LoopConfig(**{f.name: getattr(self, f.name) for f in fields(LoopConfig)})
        return method, loop, method.Config(**given)


def load_config(path: str | Path | None, overrides: dict, task: str) -> TrainConfig:
    """YAML values first, then flags the user actually gave (None means 'not given')."""
    values = read_yaml_options(path, {f.name for f in fields(TrainConfig)})
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["task"] = task
    config = TrainConfig(**normalise_lists(values))
    if not config.data:
        raise ConfigError("--data: give at least one data file")
    return config


def train(config: TrainConfig, on_event=None) -> dict:
    """Run the method named by `config.task` (flat options); returns the summary of the run."""
    method, loop, options = config.parts()
    return run_training(method, loop, options, on_event=on_event)


def read_yaml_options(path: str | Path | None, known: set[str]) -> dict:
    """A YAML mapping of option: value; unknown keys are errors naming the known ones."""
    if path is None:
        return {}
    path = Path(path)
    loaded = read_mapping(path, f"--config {path}")
    unknown = sorted(set(loaded) - known)
    if unknown:
        raise ConfigError(f"--config {path}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    return loaded


def normalise_lists(values: dict) -> dict:
    for key in ("data", "eval_data", "lora_targets"):
        if isinstance(values.get(key), str):
            values[key] = [values[key]]
    return values


def configs_for(method, config_file: str | Path | None, overrides: dict):
    """(LoopConfig, method config) from a YAML file and flags (None = not given), for any
    method; unknown keys name the known ones. Used by `rewardkit train METHOD` and the
    per-method commands."""
    loop_names = {f.name for f in fields(LoopConfig)}
    own_names = {f.name for f in fields(method.Config)}
    values = read_yaml_options(config_file, loop_names | own_names | {"task"})
    values.pop("task", None)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values = normalise_lists(values)
    problems, options = [], None
    try:
        options = method.Config(**{k: v for k, v in values.items() if k in own_names})
    except ConfigError as exc:
        problems.append(str(exc))
    try:
        loop = LoopConfig(**{k: v for k, v in values.items() if k in loop_names})
    except ConfigError as exc:
        problems.insert(0, str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    if not loop.data and not any(getattr(options, name) for name in getattr(method, "data_options", ())):
        raise ConfigError("--data: give at least one data file")
    return loop, options
