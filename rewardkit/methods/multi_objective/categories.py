"""Which expert a pair belongs to (DMoERM): its `source`, its `subset`, or a mapping file.

A mapping file is a JSON object from a source or subset value to an expert name; the key "*"
takes every pair no other key matches. A pair that no key matches is an error naming the file
and the unmatched values: a category without an expert is never dropped silently.
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardkit.errors import ConfigError
from rewardkit.types import PreferencePair


def categorize(pairs: list[PreferencePair], spec: str, min_pairs: int) -> tuple[list[str], list[int]]:
    """(expert names, expert index per pair)."""
    if spec in ("source", "subset"):
        labels = [getattr(p, spec) or "(none)" for p in pairs]
    else:
        labels = _mapped(pairs, spec)
    names = sorted(set(labels))
    counts = {n: labels.count(n) for n in names}
    if len(names) < 2:
        raise ConfigError(f"--experts {spec}: the pairs fall into {len(names)} category ({names}); experts need at "
                          "least two (use a mapping file to split or merge categories)")
    small = {n: c for n, c in counts.items() if c < min_pairs}
    if small:
        raise ConfigError(f"--experts {spec}: categories with fewer than --min-expert-pairs {min_pairs} pairs: "
                          f"{small}; merge them with a mapping file (\"*\" catches the rest) or lower the minimum")
    return names, [names.index(label) for label in labels]


def _mapped(pairs: list[PreferencePair], path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--experts {path}: not 'source', 'subset' or an existing JSON mapping file")
    try:
        mapping = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) and v for v in mapping.values()):
        raise ConfigError(f"{path}: must be a JSON object mapping a source or subset value to an expert name")
    labels, unmatched = [], {}
    for pair in pairs:
        label = mapping.get(pair.source, mapping.get(pair.subset, mapping.get("*")))
        if label is None:
            key = f"source={pair.source!r} subset={pair.subset!r}"
            unmatched[key] = unmatched.get(key, 0) + 1
        labels.append(label)
    if unmatched:
        raise ConfigError(f"{path}: no expert for these categories of the pairs (pairs each): {unmatched}; "
                          "add them to the mapping or add a \"*\" key")
    return labels
