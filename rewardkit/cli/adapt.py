"""`rewardkit adapt`: a foundation reward model adapted to a domain with K pairs, optionally
weight-averaged with its base (recipes/adapt.py)."""

from __future__ import annotations

from rewardkit.cli.common import console, out


def adapt_command(**values):
    """Few-shot domain adaptation of a judge or Bradley–Terry foundation: K domain pairs, the
    domain accuracy gained and the general accuracy kept; --alpha weight-averages the result
    with its base against forgetting (adapt.json)."""
    from rewardkit.cli.options import build_configs
    from rewardkit.recipes.adapt import AdaptConfig, adapt
    from rewardkit.training import LoopConfig

    options, loop = build_configs(values, AdaptConfig, LoopConfig)
    if not loop.data:
        from rewardkit.errors import ConfigError

        raise ConfigError("--data: give the domain's labeled pairs (the shots are sampled from them)")
    report = adapt(loop, options, on_event=lambda kind, data: kind == "stage" and console.print(f"[bold]{data['text']}[/]"))
    line = (f"adapted on {report['shots']} pairs into {loop.output}: domain accuracy "
            f"{report['before']['domain']['accuracy']:.3f} → {report['after']['domain']['accuracy']:.3f}")
    if "general_retained" in report:
        line += (f"; general {report['before']['general']['accuracy']:.3f} → "
                 f"{report['after']['general']['accuracy']:.3f}")
    out.print(line)


def register(app) -> None:
    import inspect

    from rewardkit.cli.common import user_errors
    from rewardkit.cli.options import config_parameters
    from rewardkit.recipes.adapt import AdaptConfig
    from rewardkit.training import LoopConfig

    adapt_command.__signature__ = inspect.Signature(config_parameters(AdaptConfig, LoopConfig))
    app.command("adapt")(user_errors(adapt_command))
