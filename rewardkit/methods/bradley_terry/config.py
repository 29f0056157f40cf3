"""Options of Bradley–Terry training (on top of the shared loop options)."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.domains import NON_NEGATIVE, check_domains
from rewardkit.training.loop_config import option
from rewardkit.training.source_weights import SourceWeightingOptions


@dataclass
class BradleyTerryConfig(SourceWeightingOptions):
    use_margin: bool = option(False, "subtract the pair's margin (rating gap) inside the sigmoid, as Llama 2 does",
                              flag="--use-margin/--no-margin")
    center_rewards: float = option(0.0, "reward-centring coefficient (penalises (r_c + r_r)² to keep rewards near 0)",
                                   domain=NON_NEGATIVE)
    soft_targets: bool = option(False, "train on each pair's target probability that 'chosen' is better (the row's "
                                       "'target' field, e.g. a teacher judge's verdict): cross-entropy of "
                                       "σ(r_chosen − r_rejected) against it (distillation)")

    def __post_init__(self):
        check_domains(self)  # rewardkit/domains.py
        self.check_source_options()
