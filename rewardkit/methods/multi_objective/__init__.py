"""Multi-objective reward models: interpretable attribute heads mixed by a gate, or category
experts mixed by a router.

- ArmoRM (Wang et al. 2024, "Interpretable Preferences via Multi-Objective Reward Modeling and
  Mixture-of-Experts"): stage 1 regresses human-interpretable attributes (HelpSteer's
  helpfulness, correctness, coherence, complexity, verbosity, …) from the frozen backbone's
  final state by ridge regression; each attribute is decorrelated from verbosity; stage 2 trains
  a gating MLP on the prompt's state that mixes the attribute scores into one reward, with the
  Bradley–Terry loss on ordinary preference pairs.
- DMoERM (Quan 2024, "DMoERM: Recipes of Mixture-of-Experts for Effective Reward Modeling"):
  one reward expert per task category (e.g. helpfulness vs harmlessness pairs), a router on
  the prompt choosing among them (`--experts`).

The backbone stays frozen: its final states are computed once (and cached on disk), and both
stages fit in seconds on them — which is what makes ~500 rated responses enough.

Owns: options (`config.py`), rated-response states (`states.py`), stage 1 (`attributes.py`),
stage 2 (`gating.py`, `categories.py`), the head (`head.py`), training (`fit.py`) and the
scorer (`scorer.py`, kind `multi_objective`, with `attributes()` beside `reward()`).
"""

from __future__ import annotations

from rewardkit.methods.frozen_states import FrozenStateSpec
from rewardkit.methods.multi_objective.config import MultiObjectiveConfig
from rewardkit.methods.multi_objective.fit import fit_multi_objective
from rewardkit.methods.multi_objective.scorer import KIND, AttributeScores, MultiObjectiveScorer, load_multi_objective


class MultiObjectiveMethod(FrozenStateSpec):
    """Multi-objective reward model (ArmoRM attribute heads + gate, or DMoERM category experts)
    on a frozen backbone: `rewardkit train-multi --ratings R --pairs P --output DIR`."""

    name, aliases, kind = "multi_objective", ("armorm", "multi"), KIND
    Config, loader, fitter = MultiObjectiveConfig, staticmethod(load_multi_objective), staticmethod(fit_multi_objective)
    data_options = ("pairs",)  # --pairs stands in for --data


__all__ = ["AttributeScores", "MultiObjectiveConfig", "MultiObjectiveMethod", "MultiObjectiveScorer"]
