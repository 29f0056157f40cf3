"""A learned representation of preference pairs, for preference prediction, margin prediction
and data selection — the idea of LRHP ("Learning Representations for Human Preferences",
2025): represent a pair, not only score it.

The base model (a judge or a Bradley–Terry model) embeds each labeled pair once, frozen
(`rewardkit/selection/embeddings.py`: antisymmetric in the two responses); a small head learns
an odd representation φ of that embedding from which the preference (BCE) and, where the data
has one, the rating gap (`margin`, squared error) are predicted. The saved directory holds the
head and a copy of the base, and loads like any other model: `compare()`, `reward()`, `rank()`,
plus `margins()`; its `pair_states()` is φ, so `rewardkit select --model DIR` selects in the
learned space.

    rewardkit train preference_repr --model runs/judge --data ultrafeedback.jsonl --output runs/lrhp
"""

from __future__ import annotations

from rewardkit.methods.frozen_states import FrozenStateSpec
from rewardkit.methods.preference_repr.config import PreferenceReprConfig
from rewardkit.methods.preference_repr.fit import fit_preference_repr
from rewardkit.methods.preference_repr.scorer import KIND, PreferenceReprScorer, load_preference_repr


class PreferenceReprMethod(FrozenStateSpec):
    """Preference representation (LRHP): a head over frozen pair embeddings predicting the
    preference and the margin; `rewardkit train preference_repr --model BASE --data PAIRS`."""

    name, aliases, kind = "preference_repr", ("lrhp",), KIND
    Config, fitter = PreferenceReprConfig, staticmethod(fit_preference_repr)

    def load_scorer(self, path, manifest, options):
        return load_preference_repr(path, manifest, options)  # it reads the manifest's base, not only the template


__all__ = ["PreferenceReprConfig", "PreferenceReprMethod", "PreferenceReprScorer"]
