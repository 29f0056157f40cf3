"""metrics.jsonl (one JSON object per logged step) and a loss/accuracy plot."""

from __future__ import annotations

import json
from pathlib import Path

from rewardkit.files import open_append, write_text


class MetricsLog:
    def __init__(self, output: str | Path, resume_step: int = 0, enabled: bool = True):
        self.path = Path(output) / "metrics.jsonl"
        self.enabled = enabled
        if enabled and self.path.exists():
            # on resume keep what the checkpoint covers, drop steps it will redo (and a line a
            # crash cut short: it belongs to a step past the checkpoint)
            kept = [json.dumps(r) for r in _parsed(self.path) if r.get("step", 0) <= resume_step]
            write_text(self.path, "".join(line + "\n" for line in kept) if resume_step else "")

    def write(self, record: dict) -> None:
        if self.enabled:
            with open_append(self.path) as handle:
                handle.write(json.dumps(record) + "\n")

    def records(self) -> list[dict]:
        return _parsed(self.path) if self.path.exists() else []


def _parsed(path: Path) -> list[dict]:
    """The log's records; a line that is not a whole JSON object (a write cut short) is skipped."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def plot_metrics(records: list[dict], target: str | Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if "loss" in r]
    if not train:
        return None
    evals = [r for r in records if any(k.startswith("eval_") for k in r)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss")
    if any("eval_loss" in r for r in evals):
        left.plot([r["step"] for r in evals if "eval_loss" in r], [r["eval_loss"] for r in evals if "eval_loss" in r], "o-", label="eval loss")
    left.set_xlabel("step")
    left.set_title("loss")
    left.legend()
    for key, style in (("accuracy", "-"), ("eval_accuracy", "o-"), ("eval_position_consistency", "s--"), ("token_accuracy", "-")):
        points = [(r["step"], r[key]) for r in records if key in r]
        if points:
            right.plot(*zip(*points), style, label=key)
    right.set_ylim(0, 1)
    right.set_xlabel("step")
    right.set_title("accuracy")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return Path(target)
