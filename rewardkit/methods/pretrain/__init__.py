"""Generative pre-training on unlabeled pairs: GRAM's stage 1 (Wang et al., "GRAM: A
Generative Foundation Reward Model for Reward Generalization", ICML 2025, §3.1).

Given a question, the LM learns to generate *two* responses to it (the pre-training template
puts both between answer markers); the loss covers only the response tokens. No labels are
needed, so any pile of response pairs teaches the model what responses to a question look
like, before the judge is fine-tuned on the few labeled pairs. The saved model is a causal LM
and scores as a zero-shot judge until stage 2 fine-tunes it.

Owns: its (empty) options (`config.py`), features, masked LM loss and eval loss (`task.py`),
and the saved kind `pretrained_generator`.
"""

from __future__ import annotations

from rewardkit.methods.base import MethodSpec
from rewardkit.methods.judge.scorer import load_judge
from rewardkit.methods.pretrain.config import PretrainConfig
from rewardkit.methods.pretrain.task import KIND, PretrainTask


def load_as_zero_shot_judge(path, template, options):
    """A pre-trained generator scores as a zero-shot judge: its saved template is the
    pre-training one, so the default judge template is used."""
    return load_judge(path, None, options)


class PretrainMethod(MethodSpec):
    """GRAM stage 1: generative pre-training on unlabeled response pairs."""

    name, kind = "pretrain", KIND
    Config, Task, loader = PretrainConfig, PretrainTask, staticmethod(load_as_zero_shot_judge)
    freeze_embeddings = False  # its LM loss reads the whole output head, tied to the input embeddings


__all__ = ["PretrainConfig", "PretrainMethod", "PretrainTask"]
