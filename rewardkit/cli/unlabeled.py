"""`rewardkit self-train` and `rewardkit distill`: learning from unlabeled pairs."""

from __future__ import annotations

import inspect

from rewardkit.cli.common import console, out, user_errors
from rewardkit.cli.options import build_configs, config_parameters


def _printer(kind: str, data: dict) -> None:
    if kind == "stage":
        console.print(f"[bold]{data['text']}[/]")
    elif kind == "resume" and "verdicts" in data:
        whose = f"round {data['round']}: the pool's" if "round" in data else "the teacher's"
        console.print(f"{whose} verdicts from {data['verdicts']} (scored before a stop)")
    elif kind == "resume" and "round" in data:
        console.print(f"round {data['round']} already done: skipped")
    elif kind == "done":
        console.print("  " + ", ".join(f"{k}={v:.4g}" for k, v in data.items() if isinstance(v, float)))


def self_train_command(**values):
    """Semi-supervised self-training (SSRM): judge on the labeled pairs, then rounds of confident
    pseudo-labels on the unlabeled pairs; one loadable judge per round, report.md + PNG."""
    from rewardkit.methods.judge import JudgeConfig
    from rewardkit.recipes.self_training import SelfTrainConfig, self_train
    from rewardkit.training import LoopConfig

    options, judge_options, loop = build_configs(values, SelfTrainConfig, JudgeConfig, LoopConfig)
    result = self_train(loop, judge_options, options, on_event=_printer)
    last = result["rounds"][-1]
    out.print(f"{len(result['rounds'])} rounds in {loop.output} (report.md); last round trained on "
              f"{last['trained_on']} pairs" + (f", held-out accuracy {last['eval_accuracy']:.3f}"
                                               if last.get("eval_accuracy") is not None else ""))


def distill_command(**values):
    """Judge → Bradley–Terry distillation (ECT): the teacher labels --data (labels, if any, are
    ignored), the student learns its soft verdicts; agreement, accuracy and rewards/s reported."""
    from rewardkit.methods.bradley_terry import BradleyTerryConfig
    from rewardkit.recipes.distill import DistillConfig, check_teacher, distill
    from rewardkit.training import LoopConfig

    if values.get("student"):
        values["model"] = values.pop("student")
    values.pop("student", None)
    options, bt_options, loop = build_configs(values, DistillConfig, BradleyTerryConfig, LoopConfig)
    if not loop.data:
        raise_config("--data: give the pairs the teacher labels")
    check_teacher(options.teacher)
    report = distill(loop, bt_options, options, on_event=_printer)
    t = report["throughput"]
    line = (f"student saved to {loop.output}; rewards/s student {t['student_rewards_per_s']} vs teacher "
            f"{t['teacher_rewards_per_s']} ({t['speedup']:.2f}×)")
    if "held_out" in report:
        h = report["held_out"]
        line += f"; held-out accuracy student {h['student_accuracy']:.3f}, teacher {h['teacher_accuracy']:.3f}, agreement {h['agreement']:.3f}"
    out.print(line)


def raise_config(message: str):
    from rewardkit.errors import ConfigError

    raise ConfigError(message)


def _with_flags(fn, *classes, exclude=(), extra=()):
    fn.__signature__ = inspect.Signature(list(extra) + config_parameters(*classes, exclude=exclude))
    return user_errors(fn)


def register(app) -> None:
    import typer

    from rewardkit.methods.bradley_terry import BradleyTerryConfig
    from rewardkit.methods.judge import JudgeConfig
    from rewardkit.recipes.distill import DistillConfig
    from rewardkit.recipes.self_training import SelfTrainConfig
    from rewardkit.training import LoopConfig

    app.command("self-train")(_with_flags(self_train_command, SelfTrainConfig, LoopConfig, JudgeConfig,
                                          exclude=("data",)))
    student = inspect.Parameter("student", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                                default=typer.Option(None, help="the student's base model [default: --model, "
                                                                "smollm2-135m]"))
    app.command("distill")(_with_flags(distill_command, DistillConfig, LoopConfig, BradleyTerryConfig,
                                       exclude=("soft_targets",), extra=(student,)))
