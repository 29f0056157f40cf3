"""One reward model per process for the RL adapters, safe to call from many threads.

verl runs synchronous reward functions in a thread pool and OpenRLHF calls its Python-file
reward from worker threads, one sample per call. `shared_scorer()` loads REWARDKIT_MODEL once
(under a lock: N threads arriving together load it once, not N times) and wraps it so that
calls arriving together from different threads are merged into one scorer call.
"""

from __future__ import annotations

import os
import threading
import time

from rewardkit.errors import RewardKitError

_lock = threading.Lock()
_shared = None
_monitor = None


def shared_scorer():
    global _shared
    with _lock:
        if _shared is None:
            path = os.environ.get("REWARDKIT_MODEL")
            if not path:
                raise RewardKitError("set REWARDKIT_URL (a rewardkit server) or REWARDKIT_MODEL (a model directory)")
            from rewardkit import load_reward_model

            _shared = ThreadMergingScorer(with_verifier(load_reward_model(path)))
        return _shared


def shared_monitor():
    """The process's RewardMonitor when REWARDKIT_MONITOR names a policy (warn | clip | hold;
    scoring/monitor.py), else None."""
    global _monitor
    with _lock:
        if _monitor is None and os.environ.get("REWARDKIT_MONITOR"):
            from rewardkit.scoring.monitor import monitor_from_env

            _monitor = monitor_from_env(os.environ)
        return _monitor


def with_verifier(scorer):
    """The scorer, or a CompositeReward over it when REWARDKIT_VERIFIER names a verifier
    (`math`, `exact`, `code`, `json`, `regex:PATTERN`; scoring/composite.py), with
    REWARDKIT_VERIFIED_REWARD (5.0), REWARDKIT_VERIFIER_MODE (verifier_first | mix) and
    REWARDKIT_VERIFIER_WEIGHT (0.5)."""
    spec = os.environ.get("REWARDKIT_VERIFIER")
    if not spec:
        return scorer
    from rewardkit.scoring.composite import CompositeReward

    try:
        reward = float(os.environ.get("REWARDKIT_VERIFIED_REWARD", "5.0"))
        weight = float(os.environ.get("REWARDKIT_VERIFIER_WEIGHT", "0.5"))
    except ValueError as exc:
        raise RewardKitError(f"REWARDKIT_VERIFIED_REWARD / REWARDKIT_VERIFIER_WEIGHT: {exc}") from None
    return CompositeReward(scorer, spec, mode=os.environ.get("REWARDKIT_VERIFIER_MODE", "verifier_first"),
                           weight=weight, verified_reward=reward)


class ThreadMergingScorer:
    """The wrapped RewardModel, with `compare_to_references` and `reward` calls (with or without
    per-item references) from concurrent threads merged: the first caller waits `window_s` for
    others making the same kind of call, then scores everyone's items in one call and hands each
    thread its slice. Other attributes pass through."""

    def __init__(self, scorer, window_s: float = 0.005):
        self.scorer, self.window_s = scorer, window_s
        self._cond = threading.Condition()
        self._pending: dict[tuple, list] = {}
        self.calls = 0  # scorer calls made (for tests and logs)

    def __getattr__(self, name):
        attribute = getattr(self.scorer, name)
        if name in ("audited", "reference_details"):  # per-row results, merged like reward()
            return lambda prompts, responses, references=None: self._merged(
                (name, references is not None), list(zip(prompts, responses, references))
                if references is not None else list(zip(prompts, responses)))
        return attribute

    def compare_to_references(self, prompts, responses, references) -> list[float]:
        return self._merged(("compare_to_references",), list(zip(prompts, responses, references)))

    def reward(self, prompts, responses, references=None, **kwargs) -> list[float]:
        if references is not None and not isinstance(references, (list, tuple)):  # a mapping: per call
            return self.scorer.reward(prompts, responses, references, **kwargs)
        key = ("reward", references is not None, tuple(sorted(kwargs.items())))  # only like calls merge
        items = list(zip(prompts, responses)) if references is None else list(zip(prompts, responses, references))
        return self._merged(key, items)

    def _merged(self, key: tuple, items: list) -> list[float]:
        slot = {"items": items, "result": None, "error": None, "done": False}
        with self._cond:
            self._pending.setdefault(key, []).append(slot)
            leader = len(self._pending[key]) == 1
        if leader:
            time.sleep(self.window_s)  # let other threads' calls join
            with self._cond:
                batch = self._pending.pop(key)
            self._run(key, batch)
        with self._cond:
            self._cond.wait_for(lambda: slot["done"])
        if slot["error"] is not None:
            raise slot["error"]
        return slot["result"]

    def _run(self, key: tuple, batch: list[dict]) -> None:
        items = [item for slot in batch for item in slot["items"]]
        kwargs = dict(key[2]) if len(key) > 2 and isinstance(key[2], tuple) else {}
        try:
            self.calls += 1
            scores = list(getattr(self.scorer, key[0])(*map(list, zip(*items)), **kwargs)) if items else []
            error = None
        except Exception as exc:  # noqa: BLE001 - handed to every waiting thread
            scores, error = [], exc
        with self._cond:
            start = 0
            for slot in batch:
                slot["result"], slot["error"] = scores[start:start + len(slot["items"])], error
                slot["done"] = True
                start += len(slot["items"])
            self._cond.notify_all()
