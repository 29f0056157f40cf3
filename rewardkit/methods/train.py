"""train_method: look a method up and train it — through the shared loop, or by its own `fit`
for a method fitted another way (multi_objective and preference_repr fit heads on frozen
states). The loop itself (`rewardkit/training/`) knows no method, only the TrainingTask protocol."""

from __future__ import annotations

from rewardkit.methods import get_method
from rewardkit.methods.frozen_states import FrozenStateMethod
from rewardkit.training.loop import run_training
from rewardkit.training.loop_config import LoopConfig


def train_method(method, loop: LoopConfig, options=None, on_event=None) -> dict:
    """Run `method` (a name, an alias or a Method object) with the shared `loop` options and its
    own `options` (default: its Config's defaults). Data may be files or in memory."""
    method = get_method(method) if isinstance(method, str) else method
    options = options if options is not None else method.Config()
    if isinstance(method, FrozenStateMethod):  # fitted on a frozen backbone's states, not by the loop
        return method.fit(loop, options, on_event)
    return run_training(method, loop, options, on_event=on_event)
