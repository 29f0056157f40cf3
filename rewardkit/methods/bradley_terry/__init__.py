"""Bradley–Terry reward model: the classic scalar reward of RLHF (Bradley & Terry 1952, as used
by Ouyang et al. 2022, "Training language models to follow instructions with human
feedback"; the margin term follows Touvron et al. 2023, Llama 2).

An LM with a one-output value head reads (prompt, response) and gives r; training minimises
−log σ(r_chosen − r_rejected − margin), with optional reward centring. It scores one response
per forward pass, which is what RL loops want, and is our baseline for every judge.

Owns: its options (`config.py`), features, loss and in-training eval (`task.py`), the scorer
and its loading (`scorer.py`), and the saved kind `bradley_terry`.
"""

from __future__ import annotations

from rewardkit.methods.base import MethodSpec
from rewardkit.methods.bradley_terry.config import BradleyTerryConfig
from rewardkit.methods.bradley_terry.scorer import KIND, BradleyTerryScorer, load_bradley_terry
from rewardkit.methods.bradley_terry.task import BradleyTerryTask


class BradleyTerryMethod(MethodSpec):
    """The scalar Bradley–Terry reward model (value head on the last token)."""

    name, aliases, kind = "bradley_terry", ("bt",), KIND
    Config, Task, loader = BradleyTerryConfig, BradleyTerryTask, staticmethod(load_bradley_terry)
    freeze_embeddings = True


__all__ = ["BradleyTerryConfig", "BradleyTerryMethod", "BradleyTerryScorer", "BradleyTerryTask"]
