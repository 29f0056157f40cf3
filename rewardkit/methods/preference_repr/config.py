"""Options of the preference representation (on top of the shared loop options, of which it
reads model, data, eval_data, output, max_length, max_pairs, seed and max_steps)."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.domains import COUNT, NON_NEGATIVE, POSITIVE, check_domains
from rewardkit.errors import ConfigError
from rewardkit.training.loop_config import option


@dataclass
class PreferenceReprConfig:
    dim: int = option(64, "size of the learned representation", domain=COUNT)
    steps: int = option(400, "optimizer steps of the head (--max-steps overrides)", domain=COUNT)
    head_lr: float = option(3e-3, "learning rate of the head", domain=POSITIVE)
    margin_weight: float = option(1.0, "weight of the margin loss (pairs with a 'margin' field); 0 = preference only",
                                  domain=NON_NEGATIVE)

    def __post_init__(self):
        check_domains(self)  # rewardkit/domains.py
        if self.dim < 1 or self.steps < 1 or self.head_lr <= 0 or self.margin_weight < 0:
            raise ConfigError("--dim and --steps must be ≥ 1, --head-lr > 0, --margin-weight ≥ 0")
