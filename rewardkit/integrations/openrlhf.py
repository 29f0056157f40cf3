"""OpenRLHF's Python-file remote reward: `--remote_rm_url /path/to/rewardkit/integrations/openrlhf.py`.

OpenRLHF (checked against 0.11.2) imports this file and calls `reward_func(queries, prompts,
labels)` from worker threads, one sample per call, and reads `rewards`, `scores` and
`extra_logs` from the dict it returns. The queries are chat-templated prompt + response; the
response is split off as the server does (see serve/queries.py), the label is the reference.

Which model: REWARDKIT_URL (a running `rewardkit serve`; requests go to its /get_reward, where
concurrent calls are batched) or REWARDKIT_MODEL (loaded once per process; concurrent calls are
merged by `shared_scorer`). OpenRLHF sends no auth header on this path, and neither does the
HTTP route: set REWARDKIT_API_KEY only for this file's own calls to a server that needs one.
"""

from __future__ import annotations

import os

from rewardkit.errors import RewardKitError
from rewardkit.scoring.monitor import audited_rewards
from rewardkit.scoring.protocol import sigmoid, to_scale


def reward_func(queries, prompts, labels) -> dict:
    """{"rewards", "scores", "extra_logs"} for OpenRLHF, one value per query."""
    if os.environ.get("REWARDKIT_URL"):
        from rewardkit.integrations.remote import RemoteScorer

        remote = RemoteScorer(os.environ["REWARDKIT_URL"], os.environ.get("REWARDKIT_API_KEY"))
        return remote.get_reward(list(queries), list(prompts) if prompts is not None else None,
                                 list(labels) if labels is not None else None)
    from rewardkit.integrations.shared import shared_monitor, shared_scorer

    return score_queries(shared_scorer(), queries, prompts, labels, monitor=shared_monitor())


def score_queries(scorer, queries, prompts, labels, monitor=None) -> dict:
    """The /get_reward computation on a local reward model (no server); with a `RewardMonitor`,
    its metrics join extra_logs (one value per query, as OpenRLHF logs them) and its policy
    applies to the rewards."""
    from rewardkit.serve.queries import QueryError, split_openrlhf

    try:
        questions, responses, references = split_openrlhf(queries, prompts, labels)
    except QueryError as exc:
        raise RewardKitError(str(exc)) from None
    if scorer.pointwise and all(r is None for r in references):
        if hasattr(scorer, "attributes"):  # a multi-objective model: the attribute scores are logged beside it
            from rewardkit.serve.logs import attribute_logs

            table = scorer.attributes(questions, responses)
            return _monitored([row.reward for row in table], None, attribute_logs(table), responses, monitor)
        if monitor is None:
            return _monitored(scorer.reward(questions, responses), None, {}, responses, None)
        return _monitored(None, audited_rewards(scorer, questions, responses, None), {}, responses, monitor)
    missing = [i for i, r in enumerate(references) if r is None]
    if missing:
        raise RewardKitError(f"query(ies) {missing[:10]} have no label: a pairwise judge needs a reference answer "
                             "(OpenRLHF --label_key)")
    if monitor is None:
        probabilities = scorer.compare_to_references(questions, responses, references)
        rows = None
    else:
        rows = audited_rewards(scorer, questions, responses, references)
        probabilities = [sigmoid(row.reward) for row in rows]
    rewards = [to_scale(p, "logodds") for p in probabilities]
    return _monitored(rewards, rows, {"p_better_than_reference": probabilities}, responses, monitor)


def _monitored(rewards, rows, extra_logs: dict, responses, monitor) -> dict:
    """{"rewards", "scores", "extra_logs"}: with a monitor, it sees the rows, its metrics join
    extra_logs and its policy applies."""
    if monitor is not None:
        from rewardkit.scoring.monitor import AuditedRow

        rows = rows if rows is not None else [AuditedRow(float(r)) for r in rewards]
        rewards = [row.reward for row in rows] if rewards is None else rewards
        monitor.observe(rows, [len(r) for r in responses])
        extra_logs = {**extra_logs, **{k: [v] * len(rewards) for k, v in monitor.fixed_metrics().items()}}
        rewards = monitor.apply(rewards)
    rewards = list(rewards)
    return {"rewards": rewards, "scores": rewards, "extra_logs": extra_logs}
