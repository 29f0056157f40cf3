"""rewardkit: generative (GRAM-style) and Bradley–Terry reward models — data, training,
scoring, ranking and evaluation."""

from rewardkit.types import Message, PreferencePair, ResponsePair

__version__ = "0.1.0"


def load_reward_model(path_or_name, dtype=None, device=None, **kwargs):
    """The reward model (see `rewardkit.scoring.RewardModel`) of a trained directory, built-in name or causal LM."""
    from rewardkit.methods.load import load_reward_model as load

    return load(path_or_name, dtype=dtype, device=device, **kwargs)


__all__ = ["Message", "PreferencePair", "ResponsePair", "load_reward_model", "__version__"]
