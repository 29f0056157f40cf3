"""`rewardkit serve`."""

from pathlib import Path
from typing import Optional

import typer

from rewardkit.cli.common import DTYPE_HELP, console, user_errors
from rewardkit.cli.options import checked
from rewardkit.domains import COUNT, NON_NEGATIVE, PORT, POSITIVE, PROBABILITY


@user_errors
def serve_command(
    model: str = typer.Option(..., help="trained directory, built-in name or causal LM"),
    host: str = typer.Option("127.0.0.1", help="bind address (loopback by default)"),
    port: int = typer.Option(8000, callback=checked(PORT)),
    max_batch_tokens: int = typer.Option(8192, help="token budget per forward batch", callback=checked(COUNT)),
    api_key: Optional[str] = typer.Option(None, envvar="REWARDKIT_API_KEY", help="require 'Authorization: Bearer KEY'"),
    max_queue: int = typer.Option(2048, help="comparisons allowed to wait; beyond it requests get 503 + Retry-After", callback=checked(COUNT)),
    max_items: int = typer.Option(512, help="items per request", callback=checked(COUNT)),
    max_batch_items: int = typer.Option(256, help="comparisons merged into one scorer call (1 = no batching)", callback=checked(COUNT)),
    max_wait_ms: float = typer.Option(5.0, help="how long the batcher waits for more requests to join a batch", callback=checked(NON_NEGATIVE)),
    calibration: Optional[Path] = typer.Option(None, help="JSONL {prompt, response, reference}: z-normalise rewards"),
    references: Optional[Path] = typer.Option(None, help="JSONL {prompt, reference}: reference answers by question"),
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
    max_length: Optional[int] = typer.Option(None, help="row limit in tokens [default: the model's own]", callback=checked(COUNT)),
    backend: str = typer.Option("eager", help="decoder pass: eager (PyTorch), onnx, openvino, openvino-int8, int8, "
                                              "compile, auto (by machine; see docs/cpu-backends.md), or vllm (GPU; docs/scale-out.md)"),
    read_timeout: float = typer.Option(10.0, help="seconds a client may stall while sending headers (then the "
                                                  "connection is closed) or a body (then 408)", callback=checked(POSITIVE)),
    limit_concurrency: int = typer.Option(1024, help="open connections at most; beyond it new ones get 503", callback=checked(COUNT)),
    body_timeout: float = typer.Option(30.0, help="seconds a request body may take in all, however slowly it "
                                                  "trickles in (then 408)", callback=checked(POSITIVE)),
    verifier: Optional[str] = typer.Option(None, help="a verifier decides where it can, the model elsewhere: math, "
                                                      "exact, code (the reference holds the tests), json or regex:PATTERN"),
    verified_reward: float = typer.Option(5.0, help="with --verifier: the reward of a verified response (refuted: "
                                                    "minus it), on the model's scale", callback=checked(POSITIVE)),
    verifier_weight: Optional[float] = typer.Option(None, help="with --verifier: mix weight·verdict + (1 − weight)·"
                                                               "model where the verifier decides (default: the verdict "
                                                               "alone)", callback=checked(PROBABILITY)),
    monitor: Optional[str] = typer.Option(None, help="watch /get_reward for reward over-optimisation (length "
                                                     "correlation, order and verifier disagreement; docs/monitoring.md)"
                                                     " and on a trip: warn, clip or hold"),
    monitor_window: int = typer.Option(64, help="with --monitor: the rows its metrics cover", callback=checked(COUNT)),
):
    """Serve /compare, /reward, /rank and OpenRLHF's /get_reward over HTTP with dynamic batching."""
    from rewardkit.cli.common import optional_import

    uvicorn = optional_import("uvicorn", "serve")
    optional_import("fastapi", "serve")
    from rewardkit import load_reward_model
    from rewardkit.serve.app import ServeSettings, create_app

    # the settings (and the key) are checked, and the references read, before the model loads
    settings = ServeSettings(api_key=api_key, max_queue=max_queue, max_items=max_items,
                             max_batch_items=max_batch_items, max_wait_ms=max_wait_ms, read_timeout_s=read_timeout,
                             body_timeout_s=body_timeout,
                             # a quarter of the connections may wait on slow bodies: the rest stay free for fast clients
                             max_pending_bodies=max(1, limit_concurrency // 4))
    settings.monitor = _monitor(monitor, monitor_window)  # a bad --monitor fails before the model loads
    wrap = _verifier(verifier, verified_reward, verifier_weight)  # so does a bad --verifier
    scorer = wrap(load_reward_model(model, dtype=dtype, max_length=max_length, max_batch_tokens=max_batch_tokens,
                                    backend=backend))
    _read_references_and_calibration(settings, scorer, references, calibration)
    from rewardkit.serve.header_timeout import header_timeout_protocol

    # idle keep-alive connections close after 5 s; half-sent headers after --read-timeout
    uvicorn.run(create_app(scorer, settings), host=host, port=port, log_level="info", timeout_keep_alive=5,
                limit_concurrency=limit_concurrency, http=header_timeout_protocol(read_timeout))


def _monitor(policy: str | None, window: int):
    """What --monitor makes: a RewardMonitor watching /get_reward, or None."""
    if policy is None:
        return None
    from rewardkit.scoring.monitor import RewardMonitor

    return RewardMonitor(policy=policy, window=window, min_rows=min(32, window))


def _read_references_and_calibration(settings, scorer, references: Path | None, calibration: Path | None) -> None:
    """--references (reference answers by question) and --calibration (z-normalised rewards) into the settings."""
    from rewardkit.data.references import load_references
    from rewardkit.scoring.calibration import calibrate

    if references:
        settings.references = load_references(references)
    if calibration:
        settings.normalization = calibrate(scorer, str(calibration))
        console.print(f"reward normalisation from {calibration}: mean {settings.normalization[0]:.4f}, "
                      f"std {settings.normalization[1]:.4f}")


def _verifier(spec: str | None, verified_reward: float, weight: float | None):
    """What --verifier makes of the loaded model: a CompositeReward over it, or the model as it is."""
    if not spec:
        return lambda scorer: scorer
    from rewardkit.scoring.composite import CompositeReward, verifier_from_spec

    check = verifier_from_spec(spec)
    return lambda scorer: CompositeReward(scorer, check, mode="verifier_first" if weight is None else "mix",
                                          weight=0.5 if weight is None else weight, verified_reward=verified_reward)
