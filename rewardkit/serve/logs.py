"""The `extra_logs` an RL client records beside each reward (OpenRLHF logs every key)."""

from __future__ import annotations


def attribute_logs(table: list) -> dict:
    """A multi-objective model's attribute table as one list per attribute and per gate weight
    (`gate_<name>`), in item order."""
    if not table:
        return {}
    logs = {name: [row.scores[name] for row in table] for name in table[0].scores}
    logs.update({f"gate_{name}": [row.weights[name] for row in table] for name in table[0].weights})
    return logs
