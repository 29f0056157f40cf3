"""The pairwise judge: GRAM's stage 2 (Wang et al., "GRAM: A Generative Foundation Reward
Model for Reward Generalization", ICML 2025, §3.2–3.3).

A causal LM reads a judge prompt (question, Assistant A's answer, Assistant B's answer) and
answers one token, "A" or "B". It is fine-tuned with label-smoothed cross-entropy over the two
verdict tokens, which equals a Bradley–Terry loss plus a linear penalty on the margin (see
`losses.judge_loss`); scores average both presentation orders. Any instruction-tuned causal LM
without training is the zero-shot judge.

Owns: its options (`config.py`), records → features → batches, loss and in-training eval
(`task.py`), the scorer and its loading (`scorer.py`), and the saved kind `generative_judge`.
"""

from __future__ import annotations

from rewardkit.methods.base import MethodSpec
from rewardkit.methods.judge.config import JudgeConfig
from rewardkit.methods.judge.scorer import KIND, PairwiseJudge, load_judge
from rewardkit.methods.judge.task import JudgeTask


class JudgeMethod(MethodSpec):
    """GRAM stage 2: the pairwise judge, fine-tuned with label smoothing on labeled pairs."""

    name, aliases, kind = "judge", ("finetune",), KIND
    Config, Task, loader = JudgeConfig, JudgeTask, staticmethod(load_judge)
    freeze_embeddings = True  # the judge reads two rows of the (tied) head: the embeddings can stay fixed


__all__ = ["JudgeConfig", "JudgeMethod", "JudgeTask", "PairwiseJudge", "load_judge"]
