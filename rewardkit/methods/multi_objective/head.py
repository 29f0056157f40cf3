"""MultiObjectiveHead: everything a multi-objective model adds on top of a frozen backbone.

    scores   s = W z_r + b                  one score per attribute (or per expert) from the
                                            response's standardised final state z_r
    adjusted s'_k = s_k − λ_k · d           d: the decorrelation target (the verbosity score or
                                            the centred log length); λ = 0 where not used
    gate     g = softmax(MLP(z_p))          over the mixed attributes, from the prompt's state
    reward   r = exp(log_scale) · Σ_k g_k s'_k

Gate weights are non-negative and sum to 1, so the reward is a readable mixture: the attribute
scores and their weights are returned beside it (`MultiObjectiveScorer.attributes`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from rewardkit.errors import ModelError
from rewardkit.files import write_text

WEIGHTS, SETTINGS = "multi_objective.safetensors", "multi_objective.json"


class MultiObjectiveHead(nn.Module):
    def __init__(self, hidden: int, names: list[str], *, gate_hidden: int = 256, mixed: list[str] | None = None,
                 decorrelate: str = "none", mode: str = "attributes", origins: dict | None = None):
        super().__init__()
        self.names, self.mode, self.decorrelate = list(names), mode, decorrelate
        self.origins = origins or {}
        self.mixed = list(mixed) if mixed else list(names)
        unknown = [m for m in self.mixed if m not in self.names]
        if unknown:
            raise ModelError(f"mixed attributes {unknown} are not among the heads {self.names}")
        k = len(names)
        self.register_buffer("response_mean", torch.zeros(hidden))
        self.register_buffer("response_std", torch.ones(hidden))
        self.register_buffer("prompt_mean", torch.zeros(hidden))
        self.register_buffer("prompt_std", torch.ones(hidden))
        self.register_buffer("weight", torch.zeros(k, hidden))
        self.register_buffer("bias", torch.zeros(k))
        self.register_buffer("lambdas", torch.zeros(k))
        self.register_buffer("length_mean", torch.zeros(()))
        self.register_buffer("mix_mask", torch.tensor([n in self.mixed for n in self.names]))
        self.gate = nn.Sequential(nn.Linear(hidden, gate_hidden), nn.GELU(), nn.Linear(gate_hidden, k))
        self.log_scale = nn.Parameter(torch.zeros(()))

    # -- the pieces -------------------------------------------------------------------------
    def standardise(self, states: torch.Tensor, which: str) -> torch.Tensor:
        mean, std = (self.response_mean, self.response_std) if which == "response" else (self.prompt_mean, self.prompt_std)
        return (states.float() - mean) / std

    def scores(self, response_states: torch.Tensor) -> torch.Tensor:
        """(N, K) raw attribute (or expert) scores."""
        return self.standardise(response_states, "response") @ self.weight.T + self.bias

    def adjusted(self, scores: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if self.decorrelate == "verbosity":
            target = scores[:, self.names.index("verbosity")]
        elif self.decorrelate == "length":
            if lengths is None:
                raise ModelError("length decorrelation needs the responses' lengths")
            target = torch.log1p(lengths.float()) - self.length_mean
        else:
            return scores
        return scores - self.lambdas * target[:, None]

    def gate_weights(self, prompt_states: torch.Tensor) -> torch.Tensor:
        """(N, K): non-negative, summing to 1 over the mixed attributes (0 elsewhere)."""
        logits = self.gate(self.standardise(prompt_states, "prompt"))
        return torch.softmax(logits.masked_fill(~self.mix_mask, float("-inf")), dim=-1)

    def forward(self, prompt_states, response_states, lengths=None) -> torch.Tensor:
        return self.mixture(prompt_states, response_states, lengths)[0]

    def mixture(self, prompt_states, response_states, lengths=None):
        """(reward (N,), adjusted scores (N, K), gate weights (N, K))."""
        adjusted = self.adjusted(self.scores(response_states), lengths)
        gates = self.gate_weights(prompt_states)
        return self.log_scale.exp() * (gates * adjusted).sum(-1), adjusted, gates

    # -- saving -----------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"names": self.names, "mixed": self.mixed, "decorrelate": self.decorrelate, "mode": self.mode,
                "gate_hidden": self.gate[0].out_features, "hidden": self.weight.shape[1], "origins": self.origins}

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(directory / WEIGHTS))
        write_text(directory / SETTINGS, json.dumps(self.settings(), indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> "MultiObjectiveHead":
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / WEIGHTS).is_file() or not (directory / SETTINGS).is_file():
            raise ModelError(f"{directory}: a multi-objective model needs {WEIGHTS} and {SETTINGS}")
        s = json.loads((directory / SETTINGS).read_text())
        head = cls(s["hidden"], s["names"], gate_hidden=s["gate_hidden"], mixed=s["mixed"],
                   decorrelate=s["decorrelate"], mode=s["mode"], origins=s.get("origins"))
        head.load_state_dict(load_file(str(directory / WEIGHTS)))
        return head.eval()
