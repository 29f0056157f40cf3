"""The FastAPI app: routes decode and validate, the MicroBatcher scores, routes encode.

HTTP only: what a reward is comes from the RewardModel protocol (`scoring/protocol.py`), reward
normalisation from `scoring/calibration.py`, reference files from `data/references.py`.
Rewards are on one documented scale everywhere (see PairwiseJudge.reward): log-odds that the
response beats the reference, 0 = as good as the reference; a pointwise model without a
reference gives its scalar. Optionally z-normalised with a mean and std measured on a
calibration file at start-up.
"""

from __future__ import annotations

import statistics
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Optional

try:
    from fastapi import APIRouter, Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("serving needs the 'serve' extra: pip install 'rewardkit[serve]'") from exc

from rewardkit.data.readers import undecodable
from rewardkit.data.references import find_reference
from rewardkit.errors import RewardKitError
from rewardkit.scoring.calibration import normalize
from rewardkit.scoring.protocol import sigmoid, to_scale
from rewardkit.serve.batcher import MicroBatcher, QueueFull
from rewardkit.serve.guard import RequestGuard
from rewardkit.serve.logs import attribute_logs
from rewardkit.serve.queries import QueryError, split_openrlhf
from rewardkit.serve.schemas import CompareRequest, GetRewardRequest, RankRequest, RewardRequest, to_prompt


@dataclass
class ServeSettings:
    api_key: Optional[str] = None
    max_items: int = 512  # per request
    max_body_bytes: int = 8 * 2**20
    read_timeout_s: float = 10.0  # a client that stalls this long while sending its body gets 408
    body_timeout_s: float = 30.0  # the whole body, however it trickles in; then 408
    max_pending_bodies: int = 256  # requests waiting for the rest of their body at once; one more gets 503
    max_text_chars: int = 200_000  # per prompt / response / reference (longer text is truncated anyway)
    max_rank_comparisons: int = 256  # per /rank request (round_robin on n responses costs n(n−1)/2)
    max_queue: int = 2048  # comparison jobs waiting, all requests together
    max_batch_items: int = 256
    max_wait_ms: float = 5.0
    retry_after_s: int = 1
    normalization: Optional[tuple[float, float]] = None  # (mean, std) of rewards on the calibration file
    references: dict[str, str] = field(default_factory=dict)  # question text → reference answer
    monitor: Any = None  # a RewardMonitor watching /get_reward (serve --monitor; scoring/monitor.py)

    def __post_init__(self):
        if self.api_key is not None and not self.api_key.strip():
            raise RewardKitError("the API key is empty (REWARDKIT_API_KEY or --api-key set to nothing): that would "
                                 "leave the server unprotected; unset it to serve without a key, or give a real one")


@dataclass
class ServeContext:
    """What every route reads: the reward model, the settings and the batcher."""

    scorer: Any
    settings: ServeSettings
    batcher: MicroBatcher


def create_app(scorer, settings: Optional[ServeSettings] = None) -> FastAPI:
    settings = settings or ServeSettings()
    batcher = MicroBatcher(scorer, max_queue=settings.max_queue, max_batch_items=settings.max_batch_items,
                           max_wait_ms=settings.max_wait_ms)

    @asynccontextmanager
    async def lifespan(app):
        yield
        batcher.close()

    app = FastAPI(title="rewardkit", version="0.1.0", lifespan=lifespan)
    app.state.ctx = ServeContext(scorer, settings, batcher)
    app.state.batcher = batcher
    app.add_middleware(RequestGuard, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes,
                       read_timeout_s=settings.read_timeout_s, body_timeout_s=settings.body_timeout_s,
                       max_pending_bodies=settings.max_pending_bodies, retry_after_s=settings.retry_after_s)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(QueueFull, overloaded)
    app.add_exception_handler(RewardKitError, user_error)
    app.include_router(router)
    return app


# ---- errors and limits ------------------------------------------------------------------

async def bad_request(request: Request, exc: RequestValidationError):
    problems = [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in exc.errors()]
    return JSONResponse({"error": "malformed request", "problems": problems[:20]}, status_code=400)


async def overloaded(request: Request, exc: QueueFull):
    retry = request.app.state.ctx.settings.retry_after_s
    return JSONResponse({"error": "server busy: the queue is full, retry later"}, status_code=503,
                        headers={"Retry-After": str(retry)})


async def user_error(request: Request, exc: RewardKitError):
    return JSONResponse({"error": str(exc)}, status_code=400)


def context(request: Request) -> ServeContext:
    return request.app.state.ctx


def check_sizes(settings: ServeSettings, **lists) -> None:
    """Equal lengths, the item limit, and text a tokenizer can take, before anything is queued."""
    lengths = {k: len(v) for k, v in lists.items() if v is not None}
    if len(set(lengths.values())) > 1:
        raise RewardKitError(f"lists must have the same length, got {lengths}")
    if any(n > settings.max_items for n in lengths.values()):
        raise RewardKitError(f"at most {settings.max_items} items per request, got {max(lengths.values())}")
    for name, values in lists.items():
        for index, value in enumerate(values or []):
            check_text(settings, value, f"{name}[{index}]")


def _texts(value) -> list[str]:
    """Every string inside a prompt or response: plain text, message contents, content parts
    ([{"type": "text", "text": …}]) at any depth, and role names."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []


def check_text(settings: ServeSettings, value, where: str) -> None:
    for text in _texts(value):
        if len(text) > settings.max_text_chars:
            raise RewardKitError(f"{where}: {len(text)} characters; at most {settings.max_text_chars} per text")
        problem = undecodable(text)
        if problem:
            raise RewardKitError(f"{where}: {problem}")


# ---- scoring through the batcher --------------------------------------------------------

async def rewards_for(ctx: ServeContext, prompts, responses, references) -> tuple[list[float], list[float], list | None]:
    """(rewards, probabilities, attribute table): a pointwise model without references gives its
    scalar (and σ of it), a multi-objective one also the per-attribute table behind it (else
    None); otherwise P(response better than its reference) on the log-odds scale. A None
    reference (per item) is looked up in the server's --references by question."""
    table = None
    if references is None and ctx.scorer.pointwise:
        if hasattr(ctx.scorer, "attributes"):  # the table behind the reward: see attributes_for
            table = await attributes_for(ctx, prompts, responses, references)
            raw = [row.reward for row in table]
        else:
            raw = await ctx.batcher.submit("reward", items=list(zip(prompts, responses)))
        return normalize(raw, ctx.settings.normalization), [sigmoid(r) for r in raw], table
    references = resolved_references(ctx, prompts, references)
    p = await ctx.batcher.submit("reference", items=list(zip(prompts, responses, references)))
    return normalize([to_scale(x, "logodds") for x in p], ctx.settings.normalization), p, None


def resolved_references(ctx: ServeContext, prompts, references) -> list[str]:
    """One reference per item: the one sent, else the server's --references by question."""
    references = list(references) if references is not None else [None] * len(prompts)
    references = [r if r is not None else find_reference(ctx.settings.references, p)
                  for p, r in zip(prompts, references)]
    missing = [i for i, r in enumerate(references) if r is None]
    if missing:
        raise RewardKitError(f"item(s) {missing[:10]} have no reference answer: a pairwise judge rewards a response "
                             "relative to a reference; send 'references' (or OpenRLHF 'labels'), or start the "
                             "server with --references FILE")
    return references


async def attributes_for(ctx: ServeContext, prompts, responses, references) -> list | None:
    """Per-attribute scores and gate weights of a multi-objective model (None for other models
    or when rewards are relative to references): they travel beside the reward."""
    if references is not None or not hasattr(ctx.scorer, "attributes"):
        return None
    return await ctx.batcher.submit("call", cost=len(responses), fn=lambda: ctx.scorer.attributes(prompts, responses))


def prompts_of(values: list, field_name: str = "prompts") -> list:
    return [to_prompt(p, f"{field_name}[{i}]") for i, p in enumerate(values)]


def rank_cost(scorer, strategy: str, n: int) -> int:
    """Comparisons a ranking takes (what the queue counts); a pointwise model scores n rows."""
    if scorer.pointwise:
        return n
    return {"round_robin": n * (n - 1) // 2, "reference": n}.get(strategy, max(1, n - 1))


# ---- routes -----------------------------------------------------------------------------

router = APIRouter()


@router.get("/health")
async def health(ctx: ServeContext = Depends(context)):
    limits = {"max_items": ctx.settings.max_items, "max_rank_comparisons": ctx.settings.max_rank_comparisons}
    return {"status": "ok", "kind": ctx.scorer.kind, "pointwise": bool(ctx.scorer.pointwise), "limits": limits,
            "queue_depth": ctx.batcher.depth}


@router.get("/metrics")
async def metrics(ctx: ServeContext = Depends(context)):
    m = ctx.batcher.metrics
    latencies = sorted(m["latencies_ms"])
    sizes = list(m["batch_sizes"])

    def pct(q: float):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    return {"queue_depth": ctx.batcher.depth, "requests": m["requests"], "rejected_503": m["rejected"],
            "batches": m["batches"], "mean_batch_size": statistics.fmean(sizes) if sizes else None,
            "max_batch_size": max(sizes) if sizes else None,
            "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)}}


@router.post("/compare")
async def compare(body: CompareRequest, ctx: ServeContext = Depends(context)):
    check_sizes(ctx.settings, prompts=body.prompts, responses_a=body.responses_a, responses_b=body.responses_b)
    prompts = prompts_of(body.prompts)
    if body.both_orders:
        probs = await ctx.batcher.submit("pair", items=list(zip(prompts, body.responses_a, body.responses_b)))
    else:
        probs = await ctx.batcher.submit("call", fn=lambda: ctx.scorer.compare(
            prompts, body.responses_a, body.responses_b, both_orders=False))
    return {"probabilities": probs}


@router.post("/reward")
async def reward(body: RewardRequest, ctx: ServeContext = Depends(context)):
    check_sizes(ctx.settings, prompts=body.prompts, responses=body.responses, references=body.references)
    prompts = prompts_of(body.prompts)
    rewards, probs, table = await rewards_for(ctx, prompts, body.responses, body.references)
    body_out = {"rewards": rewards, "probabilities": probs}
    if table is not None:
        body_out["attributes"] = [{"scores": row.scores, "weights": row.weights} for row in table]
    return body_out


@router.post("/rank")
async def rank(body: RankRequest, ctx: ServeContext = Depends(context)):
    check_sizes(ctx.settings, responses=body.responses)
    check_text(ctx.settings, body.prompt, "prompt")
    prompt = to_prompt(body.prompt)
    cost = rank_cost(ctx.scorer, body.strategy, len(body.responses))
    if cost > ctx.settings.max_rank_comparisons:
        raise RewardKitError(f"ranking {len(body.responses)} responses with {body.strategy!r} takes {cost} comparisons; "
                             f"at most {ctx.settings.max_rank_comparisons} per request (use knockout or reference, "
                             "or fewer responses)")
    result = await ctx.batcher.submit("call", cost=cost, fn=lambda: ctx.scorer.rank(
        prompt, body.responses, strategy=body.strategy, reference=body.reference))
    return {"order": result.order, "scores": result.scores, "best": result.best, "strategy": result.strategy}


@router.post("/get_reward")
async def get_reward(body: GetRewardRequest, ctx: ServeContext = Depends(context)):
    check_sizes(ctx.settings, query=body.query, prompts=body.prompts, labels=body.labels)
    try:
        prompts, responses, references = split_openrlhf(body.query, body.prompts, body.labels)
    except QueryError as exc:
        raise RewardKitError(str(exc)) from None
    if ctx.scorer.pointwise and all(r is None for r in references):
        references = None  # a scalar model needs no reference
    if ctx.settings.monitor is not None:
        return await monitored_rewards(ctx, prompts, responses, references)
    rewards, probs, table = await rewards_for(ctx, prompts, responses, references)
    extra = {"p_better_than_reference": probs, **attribute_logs(table or [])}
    return {"rewards": rewards, "scores": rewards, "extra_logs": extra}


async def monitored_rewards(ctx: ServeContext, prompts, responses, references) -> dict:
    """/get_reward under `serve --monitor`: the rows are scored audited (a judge's two orders, a
    composite's verdicts: the same rewards), in one queued call per request; the monitor's
    metrics join extra_logs and its policy applies."""
    from rewardkit.scoring.monitor import AuditedRow, audited_rewards

    monitor = ctx.settings.monitor
    if references is None and hasattr(ctx.scorer, "attributes"):
        rewards, probs, table = await rewards_for(ctx, prompts, responses, references)
        rows, extra = [AuditedRow(r) for r in rewards], attribute_logs(table or [])
    else:
        if references is not None:
            references = resolved_references(ctx, prompts, references)
        audited = await ctx.batcher.submit("call", cost=len(responses) * (1 if references is None else 2),
                                           fn=lambda: audited_rewards(ctx.scorer, prompts, responses, references))
        rewards = normalize([row.reward for row in audited], ctx.settings.normalization)
        rows = [replace(row, reward=r) for row, r in zip(audited, rewards)]
        extra = {"p_better_than_reference": [sigmoid(row.reward) for row in audited]}
    monitor.observe(rows, [len(r) for r in responses])
    extra.update({k: [v] * len(rows) for k, v in monitor.fixed_metrics(missing=0.0).items()})  # JSON has no NaN
    rewards = monitor.apply([row.reward for row in rows])
    return {"rewards": rewards, "scores": rewards, "extra_logs": extra}
