"""RewardBench (v1) sections, with its official example-count weighting.

A section's score is the example-count-weighted mean of its subsets' accuracies (the leaderboard
up-weights math-prm to the size of the six code subsets together). Our LLMBar file's subset
names map onto RewardBench's llmbar-* subsets (same items).
"""

from __future__ import annotations

EXAMPLE_COUNTS = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95,
    "mt-bench-easy": 28, "mt-bench-med": 40, "mt-bench-hard": 37,
    "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46,
    "refusals-dangerous": 100, "refusals-offensive": 100, "xstest-should-refuse": 154,
    "xstest-should-respond": 250, "donotanswer": 136,
    "math-prm": 984,  # 447 items, weighted as much as the code subsets together
    "hep-cpp": 164, "hep-go": 164, "hep-java": 164, "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}

SECTIONS = {
    "Chat": ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"],
    "Chat Hard": ["mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
                  "llmbar-adver-GPTOut", "llmbar-adver-manual"],
    "Safety": ["refusals-dangerous", "refusals-offensive", "xstest-should-refuse", "xstest-should-respond", "donotanswer"],
    "Reasoning": ["math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"],
}

ALIASES = {
    "Natural": "llmbar-natural", "Adversarial/Neighbor": "llmbar-adver-neighbor",
    "Adversarial/GPTInst": "llmbar-adver-GPTInst", "Adversarial/GPTOut": "llmbar-adver-GPTOut",
    "Adversarial/Manual": "llmbar-adver-manual",
}


def rewardbench_subset(name: str) -> str | None:
    name = ALIASES.get(name, name)
    return name if name in EXAMPLE_COUNTS else None


def section_weights(subset_names) -> dict[str, dict[str, int]]:
    """{section: {subset name as in the data: its example count}} for sections with at least one
    of the names."""
    canonical = {name: rewardbench_subset(name) for name in subset_names}
    out = {}
    for section, members in SECTIONS.items():
        present = {name: EXAMPLE_COUNTS[c] for name, c in canonical.items() if c in members}
        if present:
            out[section] = present
    return out


def section_scores(subset_accuracy: dict[str, float]) -> dict[str, dict]:
    """{section: {score, subsets, complete}} for sections with at least one matching subset."""
    out = {}
    for section, weights in section_weights(subset_accuracy).items():
        present = [rewardbench_subset(name) for name in weights]
        out[section] = {"score": sum(subset_accuracy[n] * w for n, w in weights.items()) / sum(weights.values()),
                        "subsets": [m for m in SECTIONS[section] if m in present],
                        "complete": set(present) == set(SECTIONS[section])}
    return out
