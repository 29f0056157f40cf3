"""Dynamic micro-batching across concurrent requests.

decode → queue → batch → predict → unbatch → encode. Requests become comparison jobs and wait
in a bounded queue; one worker thread (the model never runs on the event loop) drains whatever
is queued, up to a job budget, into a single scorer call, and resolves each request's future
with its slice of the results. A full queue is refused at once (`QueueFull` → HTTP 503 with
Retry-After) instead of growing memory.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable


class QueueFull(Exception):
    """The bounded queue has no room; the client should retry later."""


# job kinds that merge across requests → the RewardModel call that scores their items
MERGED = {"pair": "compare",  # (prompt, a, b) → P(a better than b), both orders
          "reference": "compare_to_references",  # (prompt, response, reference) → P(response better)
          "reward": "reward"}  # (prompt, response) → a pointwise model's scalar reward


@dataclass
class Job:
    kind: str  # a key of MERGED, or "call": run fn alone
    items: list[tuple] = field(default_factory=list)
    fn: Callable[[], Any] | None = None
    future: asyncio.Future | None = None
    loop: asyncio.AbstractEventLoop | None = None
    enqueued: float = field(default_factory=time.perf_counter)
    cost: int = 1  # comparisons it will take: what the queue bound counts


class MicroBatcher:
    def __init__(self, scorer, *, max_queue: int = 1024, max_batch_items: int = 256, max_wait_ms: float = 5.0,
                 call_grace_ms: float = 500.0):
        self.scorer = scorer
        # a waiting "call" job (e.g. a ranking) lets mergeable jobs queued behind it go first
        # for this long, so one large request does not hold up many small ones
        self.call_grace = call_grace_ms / 1000
        self.max_queue, self.max_batch_items = max_queue, max_batch_items
        self.max_wait = max_wait_ms / 1000
        self._queue: deque[Job] = deque()
        self._queued_items = 0
        self._lock = threading.Condition()
        self._stop = False
        self.metrics = {"requests": 0, "rejected": 0, "batches": 0, "batch_sizes": deque(maxlen=1000),
                        "latencies_ms": deque(maxlen=5000)}
        self._thread = threading.Thread(target=self._work, name="rewardkit-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        return self._queued_items

    async def submit(self, kind: str, items: list[tuple] | None = None, fn: Callable[[], Any] | None = None,
                     cost: int | None = None):
        """Queue a job and wait for its result. `cost` (comparisons; default: one per item)
        is what counts against the queue bound."""
        loop = asyncio.get_running_loop()
        job = Job(kind, list(items or []), fn, loop.create_future(), loop)
        job.cost = max(1, cost if cost is not None else len(job.items))
        with self._lock:
            if self._queued_items + job.cost > self.max_queue:
                self.metrics["rejected"] += 1
                raise QueueFull()
            self._queue.append(job)
            self._queued_items += job.cost
            self.metrics["requests"] += 1
            self._lock.notify()
        return await job.future

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._thread.join(timeout=5)

    def _take(self) -> list[Job]:
        with self._lock:
            while not self._queue and not self._stop:
                self._lock.wait()
            if self._stop:
                return []
        time.sleep(self.max_wait)  # let concurrent requests join this batch (or go before a large call)
        with self._lock:
            call = next((job for job in self._queue if job.kind == "call"), None)
            mergeable = any(job.kind != "call" for job in self._queue)
            if call is not None and (not mergeable or time.perf_counter() - call.enqueued > self.call_grace):
                self._queue.remove(call)
                self._queued_items -= call.cost
                return [call]
            taken, items = [], 0
            for job in [j for j in self._queue if j.kind != "call"]:
                if taken and items + len(job.items) > self.max_batch_items:
                    break
                self._queue.remove(job)
                taken.append(job)
                items += len(job.items)
                self._queued_items -= job.cost
            return taken

    def _work(self) -> None:
        while True:
            jobs = self._take()
            if not jobs:
                if self._stop:
                    return
                continue
            for job, outcome in self._run_isolated(jobs):
                if isinstance(outcome, BaseException):
                    job.loop.call_soon_threadsafe(_set_exception, job.future, outcome)
                    continue
                self.metrics["latencies_ms"].append((time.perf_counter() - job.enqueued) * 1000)
                job.loop.call_soon_threadsafe(_set_result, job.future, outcome)

    def _run_isolated(self, jobs: list[Job]) -> list[tuple[Job, Any]]:
        """(job, result or exception): a merged batch that fails is re-run one job at a time,
        so one bad request fails alone instead of failing every request merged with it."""
        try:
            return list(zip(jobs, self._predict(jobs)))
        except Exception as exc:  # noqa: BLE001 - reported to the requests, never swallowed
            if len(jobs) == 1:
                return [(jobs[0], exc)]
        outcomes = []
        for job in jobs:
            outcomes.extend(self._run_isolated([job]))
        return outcomes

    def _predict(self, jobs: list[Job]) -> list[Any]:
        if jobs[0].kind == "call":
            return [jobs[0].fn()]
        self.metrics["batches"] += 1
        self.metrics["batch_sizes"].append(sum(len(job.items) for job in jobs))
        scores: dict[str, list] = {}
        for kind, method in MERGED.items():  # one scorer call per kind for all jobs of that kind
            items = [item for job in jobs if job.kind == kind for item in job.items]
            scores[kind] = list(getattr(self.scorer, method)(*map(list, zip(*items)))) if items else []
        out, cursor = [], {kind: 0 for kind in MERGED}
        for job in jobs:
            start = cursor[job.kind]
            cursor[job.kind] += len(job.items)
            out.append(scores[job.kind][start:cursor[job.kind]])
        return out


def _set_result(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
