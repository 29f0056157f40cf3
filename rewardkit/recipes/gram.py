"""GRAM (Wang et al., ICML 2025): generative pre-training on unlabeled pairs, then judge
fine-tuning with label smoothing on labeled pairs, the second stage starting from the first.

`train_gram` is the pipeline with the shared loop options (`rewardkit gram`); `gram` runs it
with the CPU recipe the demo and the studies share (`PartialFineTune`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rewardkit.methods.train import train_method
from rewardkit.recipes.partial_finetune import Event, PartialFineTune, tagged
from rewardkit.training.loop_config import LoopConfig


def stage1_directory(output: str | Path) -> Path:
    """Where stage 1's generator goes: beside the judge, `<output>_stage1`."""
    output = Path(output)
    return output.with_name(output.name + "_stage1")


def train_gram(loop: LoopConfig, judge_options, *, unlabeled, pretrain_epochs: float = 1.0,
               pretrain_steps: int | None = None, on_event: Event | None = None) -> dict:
    """Stage 1 on `unlabeled` (response pairs; labeled files are read with their labels dropped)
    into `<loop.output>_stage1`, then stage 2 on `loop.data` into `loop.output`, starting from
    stage 1. Both stages share `loop`'s options; stage 1 runs `pretrain_epochs` (or
    `pretrain_steps`) and is not evaluated. Returns {"pretrain": summary, "judge": summary}."""
    emit = on_event or (lambda kind, data: None)
    stage1 = stage1_directory(loop.output)
    emit("stage", {"stage": 1, "text": "GRAM stage 1: pair-generation pre-training", "output": str(stage1)})
    first = train_method("pretrain", replace(loop, data=unlabeled, output=str(stage1), eval_data=[],
                                             epochs=pretrain_epochs, max_steps=pretrain_steps),
                         on_event=tagged("pretrain", emit))
    emit("stage", {"stage": 2, "text": "GRAM stage 2: judge fine-tuning", "output": loop.output})
    second = train_method("judge", replace(loop, model=str(stage1)), judge_options, on_event=tagged("judge", emit))
    return {"pretrain": first, "judge": second}


def gram(settings: PartialFineTune, base_model: str, unlabeled, labeled, output: str | Path, *,
         pretrain_epochs: float = 1.0, finetune_epochs: float = 1.0, on_event: Event | None = None) -> dict:
    """Trains `output`_stage1 (the generator) then `output` (the judge); returns both stages' seconds."""
    emit = on_event or (lambda kind, data: None)
    stage1 = stage1_directory(output)

    emit("stage", {"name": "pretrain", "text": "GRAM stage 1: pair-generation pre-training"})
    seconds = {"pretrain": settings.pretrain(base_model, unlabeled, stage1, epochs=pretrain_epochs,
                                             on_event=tagged("pretrain", emit))}
    emit("stage", {"name": "finetune", "text": f"GRAM stage 2: judge fine-tuning (label smoothing "
                                               f"{settings.label_smoothing})"})
    seconds["finetune"] = settings.judge(str(stage1), labeled, output, epochs=finetune_epochs,
                                         on_event=tagged("finetune", emit))
    return seconds
