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


class MicroBatcher:
    def __init__(self, scorer, *, max_queue: int = 1024, max_batch_items: int = 256, max_wait_ms: float = 5.0):
        self.scorer = scorer
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

    async def submit(self, kind: str, items: list[tuple] | None = None, fn: Callable[[], Any] | None = None):
        loop = asyncio.get_running_loop()
        job = Job(kind, list(items or []), fn, loop.create_future(), loop)
        size = max(1, len(job.items))
        with self._lock:
            if self._queued_items + size > self.max_queue:
                self.metrics["rejected"] += 1
                raise QueueFull()
            self._queue.append(job)
            self._queued_items += size
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
            first = self._queue[0]
            if first.kind == "call":
                self._queue.popleft()
                self._queued_items -= 1
                return [first]
        time.sleep(self.max_wait)  # let concurrent requests join this batch
        with self._lock:
            taken, items = [], 0
            while self._queue and self._queue[0].kind != "call":
                job = self._queue[0]
                if taken and items + len(job.items) > self.max_batch_items:
                    break
                self._queue.popleft()
                taken.append(job)
                items += len(job.items)
                self._queued_items -= max(1, len(job.items))
            return taken

    def _work(self) -> None:
        while True:
            jobs = self._take()
            if not jobs:
                if self._stop:
                    return
                continue
            try:
                results = self._predict(jobs)
            except Exception as exc:  # every waiting request learns of the failure
                for job in jobs:
                    job.loop.call_soon_threadsafe(_set_exception, job.future, exc)
                continue
            now = time.perf_counter()
            for job, result in zip(jobs, results):
                self.metrics["latencies_ms"].append((now - job.enqueued) * 1000)
                job.loop.call_soon_threadsafe(_set_result, job.future, result)

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
