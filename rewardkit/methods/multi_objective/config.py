"""Options of multi-objective training (on top of the shared loop options, of which it reads
model, data/--pairs, output, max_length, max_pairs, seed, resume and max_steps)."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.domains import COUNT, NON_NEGATIVE, POSITIVE, Domain, check_domains
from rewardkit.errors import ConfigError
from rewardkit.training.loop_config import option

DECORRELATE = ("verbosity", "length", "none")
HEADS = ("ridge", "linear")


@dataclass
class MultiObjectiveConfig:
    ratings: list = option(help="rated-response file(s) for the attribute heads (stage 1); repeat the flag for more",
                           factory=list)
    pairs: list = option(help="preference pair file(s) for the gate (stage 2); the same as --data", factory=list)
    scale: str | None = option(None, "rating scale LO,HI for rows that do not declare one (HelpSteer: 0,4)")
    safety_pairs: list = option(help="pair file(s) giving a derived 'harmlessness' attribute (chosen = 1, "
                                     "rejected = 0), e.g. HH-RLHF harmless", factory=list)
    attribute_heads: str = option("ridge", "stage 1: ridge (closed form on cached states, alpha by cross-validation) "
                                           "or linear (heads trained by gradient, masked MSE)")
    ridge_alphas: list[float] = option(help="ridge penalties cross-validated per attribute", domain=POSITIVE,
                                       factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0])
    decorrelate: str = option("verbosity", "remove from each attribute its linear dependence on: verbosity (the "
                                           "verbosity head, as ArmoRM), length (log response length) or none")
    length_penalties: list[float] = option(domain=NON_NEGATIVE, help="stage-2 penalties on corr(reward, log length)²; the one used is "
                                                "chosen on a validation split (see README)",
                                           factory=lambda: [0.0, 0.3, 1.0, 3.0])
    mix: list[str] = option(help="attributes the gate mixes [default: all but verbosity when decorrelating]",
                            factory=list)
    experts: str | None = option(None, "category experts (DMoERM) instead of attribute gating: source, subset, "
                                       "or a JSON file mapping a source/subset value to an expert ('*' = the rest)")
    min_expert_pairs: int = option(16, "an expert needs at least this many pairs", domain=COUNT)
    gate_hidden: int = option(256, "hidden units of the gating network", domain=COUNT)
    gate_steps: int = option(300, "optimizer steps of the gate (and of each expert head); --max-steps overrides",
                            domain=COUNT)
    gate_lr: float = option(1e-3, "learning rate of the gate and of trained heads", domain=POSITIVE)
    validation_share: float = option(0.2, "share of the pairs held out to choose the length penalty",
                                     domain=Domain("a number in (0, 0.5)", low=0, high=0.5, low_open=True, high_open=True))

    def __post_init__(self):
        check_domains(self)  # rewardkit/domains.py
        problems = []
        if self.attribute_heads not in HEADS:
            problems.append(f"--attribute-heads must be one of {', '.join(HEADS)}, got {self.attribute_heads!r}")
        if self.decorrelate not in DECORRELATE:
            problems.append(f"--decorrelate must be one of {', '.join(DECORRELATE)}, got {self.decorrelate!r}")
        if not self.ridge_alphas or any(a <= 0 for a in self.ridge_alphas):
            problems.append("--ridge-alphas must be positive numbers")
        if any(p < 0 for p in self.length_penalties) or not self.length_penalties:
            problems.append("--length-penalties must be numbers ≥ 0")
        if not 0 < self.validation_share < 0.5:
            problems.append(f"--validation-share must be in (0, 0.5), got {self.validation_share}")
        for name in ("min_expert_pairs", "gate_hidden", "gate_steps"):
            if getattr(self, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be ≥ 1")
        if self.scale is not None:
            try:
                parse_scale(self.scale)
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError("invalid multi-objective options:\n  " + "\n  ".join(problems))


def parse_scale(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        low, high = (float(x) for x in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--scale must be LO,HI (e.g. 0,4), got {text!r}") from None
    if low >= high:
        raise ConfigError(f"--scale: LO must be below HI, got {text!r}")
    return low, high
