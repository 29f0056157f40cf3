"""GRAM (Wang et al., ICML 2025): generative pre-training on unlabeled pairs, then judge
fine-tuning with label smoothing on labeled pairs, the second stage starting from the first."""

from __future__ import annotations

from pathlib import Path

from rewardkit.recipes.partial_finetune import Event, PartialFineTune, tagged


def gram(settings: PartialFineTune, base_model: str, unlabeled, labeled, output: str | Path, *,
         pretrain_epochs: float = 1.0, finetune_epochs: float = 1.0, on_event: Event | None = None) -> dict:
    """Trains `output`_stage1 (the generator) then `output` (the judge); returns both stages' seconds."""
    emit = on_event or (lambda kind, data: None)
    output = Path(output)
    stage1 = output.with_name(output.name + "_stage1")

    emit("stage", {"name": "pretrain", "text": "GRAM stage 1: pair-generation pre-training"})
    seconds = {"pretrain": settings.pretrain(base_model, unlabeled, stage1, epochs=pretrain_epochs,
                                             on_event=tagged("pretrain", emit))}
    emit("stage", {"name": "finetune", "text": f"GRAM stage 2: judge fine-tuning (label smoothing "
                                               f"{settings.label_smoothing})"})
    seconds["finetune"] = settings.judge(str(stage1), labeled, output, epochs=finetune_epochs,
                                         on_event=tagged("finetune", emit))
    return seconds
