"""Options of generative pre-training: none beyond the shared loop options (the template comes
from --template; the loss covers both responses)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PretrainConfig:
    pass
