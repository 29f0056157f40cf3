"""How a selection spreads over the pool: a table by source and subset, and a 2-D map (the
first two principal components of the pool's embeddings, selected and target pairs marked)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np


def spread_table(pool_sources: list[str], pool_subsets: list[str], chosen: np.ndarray) -> str:
    lines = ["| source / subset | in pool | selected | share of selection | share of its pool |",
             "|---|---:|---:|---:|---:|"]
    keys = [f"{s or '(none)'} / {t or '(none)'}" for s, t in zip(pool_sources, pool_subsets)]
    pool_counts, picked = Counter(keys), Counter(keys[i] for i in chosen)
    for key, count in sorted(pool_counts.items(), key=lambda kv: -picked[kv[0]]):
        lines.append(f"| {key} | {count} | {picked[key]} | {picked[key] / max(1, len(chosen)):.2f} | "
                     f"{picked[key] / count:.2f} |")
    return "\n".join(lines)


def projection_plot(pool: np.ndarray, target: np.ndarray | None, chosen: np.ndarray, path: str | Path,
                    title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centre = pool.mean(axis=0)
    _, _, axes = np.linalg.svd(pool - centre, full_matrices=False)
    project = lambda x: (x - centre) @ axes[:2].T  # noqa: E731 - a two-line projection
    xy = project(pool)
    mask = np.zeros(len(pool), dtype=bool)
    mask[chosen] = True
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(xy[~mask, 0], xy[~mask, 1], s=6, c="lightgrey", label="pool")
    ax.scatter(xy[mask, 0], xy[mask, 1], s=8, c="tab:blue", label="selected")
    if target is not None and len(target):
        t = project(target)
        ax.scatter(t[:, 0], t[:, 1], s=14, c="tab:red", marker="x", label="target")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
