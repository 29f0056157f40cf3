"""verl custom reward functions, backed by a local reward model or a rewardkit server.

Checked against verl 0.9.x. Its reward loop calls
`compute_score(data_source=…, solution_str=…, ground_truth=…, extra_info=…,
reward_router_address=…, reward_model_tokenizer=…, **reward_kwargs)` once per sample: awaited
when the function is a coroutine (`compute_score_async`), else in a thread pool. Set
`reward.custom_reward_function.path=<this file>` and `.name=compute_score_async` (or
`compute_score`). The legacy batch route (`reward_model.reward_manager=batch`, older verl)
calls `compute_score_batch` with lists. Keywords this module does not use are accepted and
ignored.

`ground_truth` is the reference answer and the question comes from `extra_info["question"]`
(or "prompt" / "query"); the score is the log-odds that the solution beats the reference
(0 = as good). A pointwise model (Bradley–Terry) needs no reference.

Which model: REWARDKIT_URL (a running `rewardkit serve`, optional REWARDKIT_API_KEY) or
REWARDKIT_MODEL (loaded once per process; concurrent calls from verl's threads are merged
into one scorer call, see integrations/shared.py).
"""

from __future__ import annotations

import asyncio
import os
import threading

from rewardkit.errors import RewardKitError

QUESTION_KEYS = ("question", "prompt", "query")
_remote_lock = threading.Lock()
_remote = None


def _scorer():
    global _remote
    if os.environ.get("REWARDKIT_URL"):
        with _remote_lock:
            if _remote is None:
                from rewardkit.integrations.remote import RemoteScorer

                _remote = RemoteScorer(os.environ["REWARDKIT_URL"], os.environ.get("REWARDKIT_API_KEY"))
            return _remote
    from rewardkit.integrations.shared import shared_scorer

    return shared_scorer()


def _question(extra_info, index: int) -> str:
    if isinstance(extra_info, dict):
        for key in QUESTION_KEYS:
            if isinstance(extra_info.get(key), str) and extra_info[key].strip():
                return extra_info[key]
    raise RewardKitError(f"sample {index}: extra_info has no question (looked for {', '.join(QUESTION_KEYS)}); "
                         "put the prompt text in the dataset's extra_info['question']")


def _reference(ground_truth, index: int, pointwise: bool) -> str | None:
    if ground_truth is None or (isinstance(ground_truth, str) and not ground_truth.strip()):
        if pointwise:
            return None
        raise RewardKitError(f"sample {index}: ground_truth is empty; a pairwise judge needs a reference answer "
                             "(reward_model.ground_truth in the dataset)")
    return ground_truth if isinstance(ground_truth, str) else str(ground_truth)


def compute_score(data_source=None, solution_str: str = "", ground_truth=None, extra_info=None, scorer=None,
                  monitor=None, **kwargs):
    """One sample: log-odds that `solution_str` beats the reference `ground_truth`. With a
    monitor (`monitor=` or REWARDKIT_MONITOR), a dict: {"score": …, "rewardkit/…": the
    monitor's metrics}, which verl keeps as reward extras and reports per data source."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], scorer=scorer,
                               monitor=monitor)[0]


async def compute_score_async(data_source=None, solution_str: str = "", ground_truth=None, extra_info=None,
                              scorer=None, monitor=None, **kwargs):
    """The coroutine form verl's reward loop awaits; the model runs in a worker thread, and
    concurrent samples are merged into one scorer call."""
    return await asyncio.to_thread(compute_score, data_source, solution_str, ground_truth, extra_info, scorer,
                                   monitor)


def compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, scorer=None, monitor=None,
                        **kwargs) -> list:
    """Batch form (verl's legacy batch reward manager): one scorer call for the whole batch."""
    extra_infos = extra_infos if extra_infos is not None else [None] * len(solution_strs)
    if not (len(data_sources) == len(solution_strs) == len(ground_truths) == len(extra_infos)):
        raise RewardKitError("data_sources, solution_strs, ground_truths and extra_infos must have the same length")
    scorer = scorer or _scorer()
    if monitor is None:
        from rewardkit.integrations.shared import shared_monitor

        monitor = shared_monitor()
    questions = [_question(info, i) for i, info in enumerate(extra_infos)]
    references = [_reference(g, i, scorer.pointwise) for i, g in enumerate(ground_truths)]
    if scorer.pointwise and all(r is None for r in references):
        references = None
    if monitor is None:
        return list(scorer.reward(questions, list(solution_strs), references))
    from rewardkit.scoring.monitor import audited_rewards

    rows = audited_rewards(scorer, questions, list(solution_strs), references)
    monitor.observe(rows, [len(s) for s in solution_strs])
    metrics = monitor.fixed_metrics()
    return [{"score": reward, **metrics} for reward in monitor.apply([row.reward for row in rows])]
