"""Training: one accelerate loop (`loop.py`) that runs any method of `rewardkit.methods`."""

from rewardkit.training.config import TrainConfig, load_config
from rewardkit.training.loop_config import LoopConfig


def train(config: TrainConfig, on_event=None) -> dict:
    """Run the method named by `config.task` (flat options); returns the summary of the run."""
    from rewardkit.training.loop import run_training

    method, loop, options = config.parts()
    return run_training(method, loop, options, on_event=on_event)


def train_method(method, loop: LoopConfig, options=None, on_event=None) -> dict:
    """Run `method` (a name, an alias or a Method object) with the shared `loop` options and its
    own `options` (default: its Config's defaults). Data may be files or in memory."""
    from rewardkit.methods import get_method
    from rewardkit.training.loop import run_training

    method = get_method(method) if isinstance(method, str) else method
    options = options if options is not None else method.Config()
    if hasattr(method, "fit"):  # a method fitted outside the gradient loop (e.g. on frozen states)
        return method.fit(loop, options, on_event)
    return run_training(method, loop, options, on_event=on_event)


__all__ = ["LoopConfig", "TrainConfig", "load_config", "train", "train_method"]
