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
from rewardkit.scoring.protocol import to_scale


def reward_func(queries, prompts, labels) -> dict:
    """{"rewards", "scores", "extra_logs"} for OpenRLHF, one value per query."""
    if os.environ.get("REWARDKIT_URL"):
        from rewardkit.integrations.remote import RemoteScorer

        remote = RemoteScorer(os.environ["REWARDKIT_URL"], os.environ.get("REWARDKIT_API_KEY"))
        return remote.get_reward(list(queries), list(prompts) if prompts is not None else None,
                                 list(labels) if labels is not None else None)
    from rewardkit.integrations.shared import shared_scorer

    return score_queries(shared_scorer(), queries, prompts, labels)


def score_queries(scorer, queries, prompts, labels) -> dict:
    """The /get_reward computation on a local reward model (no server)."""
    from rewardkit.serve.queries import QueryError, split_openrlhf

    try:
        questions, responses, references = split_openrlhf(queries, prompts, labels)
    except QueryError as exc:
        raise RewardKitError(str(exc)) from None
    if scorer.pointwise and all(r is None for r in references):
        if hasattr(scorer, "attributes"):  # a multi-objective model: the attribute scores are logged beside it
            from rewardkit.serve.logs import attribute_logs

            table = scorer.attributes(questions, responses)
            rewards = [row.reward for row in table]
            return {"rewards": rewards, "scores": rewards, "extra_logs": attribute_logs(table)}
        rewards = scorer.reward(questions, responses)
        return {"rewards": rewards, "scores": rewards, "extra_logs": {}}
    missing = [i for i, r in enumerate(references) if r is None]
    if missing:
        raise RewardKitError(f"query(ies) {missing[:10]} have no label: a pairwise judge needs a reference answer "
                             "(OpenRLHF --label_key)")
    probabilities = scorer.compare_to_references(questions, responses, references)
    rewards = [to_scale(p, "logodds") for p in probabilities]
    return {"rewards": rewards, "scores": rewards, "extra_logs": {"p_better_than_reference": probabilities}}
