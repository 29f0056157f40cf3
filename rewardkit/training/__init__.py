"""Training: one accelerate loop (`loop.py`) that runs any `TrainingTask`, and the options every
method shares (`LoopConfig`). Which method to run is decided above it: `rewardkit.train_method`
(`rewardkit/methods/train.py`)."""

from rewardkit.deprecation import moved
from rewardkit.training.loop_config import LoopConfig

# forwarding addresses of names that lived here (see rewardkit/deprecation.py)
_MOVED = {"train_method": "rewardkit.methods.train", "TrainConfig": "rewardkit.methods.train_config",
          "load_config": "rewardkit.methods.train_config", "train": "rewardkit.methods.train_config"}


def __getattr__(name: str):
    return moved(__name__, _MOVED, name)


__all__ = ["LoopConfig"]
