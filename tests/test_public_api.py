"""One public API: `import rewardkit as rk` offers what users need, lazily; old names keep
working with a DeprecationWarning that names their new home and the version removing them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rewardkit as rk
from rewardkit.deprecation import REMOVED_IN


def test_import_rewardkit_loads_no_model_library():
    code = "import sys, rewardkit; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("name", rk.__all__)
def test_every_public_name_resolves(name):
    assert getattr(rk, name) is not None
    assert name in dir(rk)


def test_the_public_names_are_the_library_objects():
    from rewardkit.methods.load import load_reward_model
    from rewardkit.methods.train import train_method
    from rewardkit.training.loop_config import LoopConfig

    assert rk.load_reward_model is load_reward_model and rk.train_method is train_method and rk.LoopConfig is LoopConfig
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        rk.nothing_here  # noqa: B018


@pytest.mark.parametrize("module, name, home", [
    ("rewardkit.scoring", "load_reward_model", "rewardkit.methods.load"),
    ("rewardkit.scoring", "PairwiseJudge", "rewardkit.methods.judge"),
    ("rewardkit.scoring", "BradleyTerryScorer", "rewardkit.methods.bradley_terry"),
    ("rewardkit.training", "train_method", "rewardkit.methods.train"),
    ("rewardkit.training", "TrainConfig", "rewardkit.methods.train_config"),
    ("rewardkit.training", "load_config", "rewardkit.methods.train_config"),
    ("rewardkit.training", "train", "rewardkit.methods.train_config"),
])
def test_old_names_work_and_say_where_they_went(module, name, home):
    import importlib

    with pytest.warns(DeprecationWarning, match=rf"{home}\.{name}.*removed in rewardkit {REMOVED_IN}"):
        old = getattr(importlib.import_module(module), name)
    assert old is getattr(importlib.import_module(home), name)


def test_a_name_that_never_existed_is_an_attribute_error():
    import rewardkit.scoring

    with pytest.raises(AttributeError):
        rewardkit.scoring.NoSuchThing  # noqa: B018
