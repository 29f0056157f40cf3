"""Noisy-label detection: pairs where a confident model disagrees with the label.

Each pair is scored in both orders; a pair is flagged when P(chosen better) ≤ 1 − confidence,
i.e. the model prefers the rejected answer at least that confidently. The review file lists the
flagged pairs, most confident disagreement first, with the evidence (the averaged p, each
order's p, the log-odds margin, whether the two orders agree) and every original field; the
data file itself is never changed and nothing is dropped.
"""

from __future__ import annotations

import math

from rewardkit.types import prompt_to_json


def audit_pairs(scorer, pairs: list, *, confidence: float = 0.8, chunk: int = 64) -> list[dict]:
    """Review rows for the flagged pairs, most confident disagreement first."""
    flagged = []
    for start in range(0, len(pairs), chunk):
        part = pairs[start:start + chunk]
        details = scorer.compare_details([p.prompt for p in part], [p.chosen for p in part], [p.rejected for p in part])
        for offset, (pair, d) in enumerate(zip(part, details)):
            p = min(max(d.probability, 1e-6), 1 - 1e-6)
            if p <= 1 - confidence:
                orders = [q for q in (d.p_ab, d.p_ba) if q is not None]
                flagged.append({"row": start + offset, "id": pair.id, "p_chosen": d.probability,
                                "p_chosen_first": d.p_ab, "p_chosen_second": d.p_ba,
                                "margin_logodds": math.log(p / (1 - p)),
                                "orders_agree": all(q < 0.5 for q in orders),
                                "prompt": prompt_to_json(pair.prompt), "chosen": pair.chosen, "rejected": pair.rejected,
                                "source": pair.source, "subset": pair.subset, **dict(pair.extra or {})})
    flagged.sort(key=lambda row: row["p_chosen"])
    return flagged


def precision_recall(flagged_rows: list[int], flipped_rows: set[int]) -> dict:
    hits = len(set(flagged_rows) & flipped_rows)
    return {"flagged": len(flagged_rows), "planted": len(flipped_rows),
            "precision": hits / len(flagged_rows) if flagged_rows else None,
            "recall": hits / len(flipped_rows) if flipped_rows else None}
