"""Options of the pairwise judge's fine-tuning (on top of the shared loop options)."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.domains import SHARE, check_domains
from rewardkit.errors import ConfigError
from rewardkit.training.loop_config import option
from rewardkit.training.source_weights import SourceWeightingOptions


@dataclass
class JudgeConfig(SourceWeightingOptions):
    label_smoothing: float = option(0.1, "label smoothing ε (0.1 = regularised Bradley–Terry, GRAM §3.3)",
                                    domain=SHARE)
    both_orders: bool = option(True, "train on every pair in both presentation orders",
                               flag="--both-orders/--one-order")
    tool_observations: bool = option(False, "run tools on each pair (a calculator, the final answer against the "
                                            "row's 'answer', code on the row's 'tests') and show the judge what "
                                            "they found, in training and scoring alike (Themis; docs/verifiers.md)")
    centre_orders: bool = option(False, "loss on each pair's margin averaged over its two orders, so the "
                                        "position preference gets no gradient (see losses.order_centred_judge_loss)")

    def __post_init__(self):
        check_domains(self)  # rewardkit/domains.py
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        self.check_source_options()
        if self.centre_orders and self.source_weighting == "more":
            raise ConfigError("--centre-orders and --source-weighting more cannot be combined yet: MORE weights "
                              "each row's loss, the centred loss is per pair")
        if self.centre_orders and not self.both_orders:
            raise ConfigError("--centre-orders needs both presentation orders of each pair (drop --one-order)")
