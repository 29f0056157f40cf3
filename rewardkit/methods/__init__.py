"""Reward-model methods, one folder each, and the registry that names them.

The training loop, `load_reward_model` and the CLI find a method only here: by its name or an
alias (`get_method("judge")`, `get_method("finetune")`) or by the `kind` its saved models carry
(`method_for_kind("generative_judge")`). A method written elsewhere (a user's, a test's) plugs
in with `register_method(MyMethod())` and is then trained, loaded, evaluated, ranked and served
like the built-in ones; see `methods/base.py` for what it provides.

Built in:
  pretrain        GRAM stage 1: generative pre-training on unlabeled pairs
  judge           GRAM stage 2: the pairwise judge, label-smoothed fine-tuning
  bradley_terry   the scalar Bradley–Terry reward model
  multi_objective ArmoRM attribute heads + gate, or DMoERM category experts (frozen backbone)
  preference_repr LRHP: a learned pair representation predicting preference and margin
"""

from __future__ import annotations

import importlib

from rewardkit.errors import ConfigError, ModelError
from rewardkit.methods.base import Method, MethodSpec, Prepared, TrainingTask

_METHODS: dict[str, Method] = {}
_BUILTINS_LOADED = False
DEFAULT_SCORER_KIND = "generative_judge"  # a directory without rewardkit.json is a causal LM: a zero-shot judge


def register_method(method: Method, *, replace: bool = False) -> Method:
    """Make `method` known by its name, aliases and kind. Returns it (usable as a decorator's tail)."""
    _load_builtins()
    names = (method.name, *method.aliases)
    taken = [n for n in names if n in _METHODS and _METHODS[n] is not method] + \
            [m.name for m in _unique() if m.kind == method.kind and m.name != method.name]
    if taken and not replace:
        raise ConfigError(f"method {method.name!r}: name, alias or kind already registered by {sorted(set(taken))}")
    for name in names:
        _METHODS[name] = method
    return method


def get_method(name: str) -> Method:
    _load_builtins()
    if name not in _METHODS:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(method_names())}")
    return _METHODS[name]


def method_for_kind(kind: str) -> Method:
    _load_builtins()
    for method in _unique():
        if method.kind == kind:
            return method
    known = sorted(m.kind for m in _unique())
    raise ModelError(f"rewardkit.json: unknown model kind {kind!r}; known kinds: {', '.join(known)}. A method "
                     "registered in your own code must be registered (register_method) before loading its models")


def method_names() -> list[str]:
    _load_builtins()
    return [m.name for m in _unique()]


def _unique() -> list[Method]:
    return list({id(m): m for m in _METHODS.values()}.values())


# the built-in methods, by address: imported on first lookup, like any plugin, so that a method
# may itself load models of other methods (preference_repr wraps a judge or a BT model)
BUILTIN_METHODS = ("rewardkit.methods.pretrain:PretrainMethod", "rewardkit.methods.judge:JudgeMethod",
                   "rewardkit.methods.bradley_terry:BradleyTerryMethod",
                   "rewardkit.methods.multi_objective:MultiObjectiveMethod",
                   "rewardkit.methods.preference_repr:PreferenceReprMethod")


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    for address in BUILTIN_METHODS:
        module, name = address.split(":")
        register_method(getattr(importlib.import_module(module), name)())


__all__ = ["DEFAULT_SCORER_KIND", "Method", "MethodSpec", "Prepared", "TrainingTask", "get_method",
           "method_for_kind", "method_names", "register_method"]
