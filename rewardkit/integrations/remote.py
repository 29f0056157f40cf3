"""RemoteScorer: the scorer interface (compare, compare_to_references, reward, rank) over HTTP
to `rewardkit serve`, retrying politely when the server answers 503 with Retry-After."""

from __future__ import annotations

import time
from typing import Sequence

from rewardkit.errors import RewardKitError
from rewardkit.scoring.protocol import Comparison, RankResult, to_scale
from rewardkit.types import prompt_to_json

# what a server that does not report its limits (rewardkit before 0.2) accepted
DEFAULT_LIMITS = {"max_items": 512, "max_rank_comparisons": 256}


class RemoteScorer:
    """Requests are split to fit the server's limits (read once from its /health), so any batch
    size works; `pointwise` and `kind` are the server's model's."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0, retries: int = 20):
        try:
            import httpx
        except ImportError:
            raise RewardKitError("RemoteScorer needs httpx: pip install 'rewardkit[serve]'") from None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.retries = retries
        self._health: dict | None = None

    def _server(self) -> dict:
        if self._health is None:
            response = self.client.get("/health")
            if response.status_code != 200:
                raise RewardKitError(f"reward server /health answered {response.status_code}: {response.text[:300]}")
            self._health = response.json()
        return self._health

    @property
    def kind(self) -> str:
        return self._server().get("kind", "remote")

    @property
    def pointwise(self) -> bool:
        """Whether the server's model rewards a response alone (Bradley–Terry) or needs a reference."""
        return bool(self._server().get("pointwise", False))

    @property
    def limits(self) -> dict:
        return {**DEFAULT_LIMITS, **(self._server().get("limits") or {})}

    def _chunks(self, count: int):
        size = max(1, int(self.limits["max_items"]))
        return [(start, min(start + size, count)) for start in range(0, count, size)]

    def _post_split(self, path: str, lists: dict, fixed: dict, key: str) -> list:
        """`path` called once per chunk of the parallel `lists`, the `key` results concatenated."""
        count = len(next(iter(lists.values())))
        results: list = []
        for start, end in self._chunks(count):
            results += self._post(path, {**{k: v[start:end] for k, v in lists.items()}, **fixed})[key]
        return results

    def _post(self, path: str, body: dict) -> dict:
        for attempt in range(self.retries + 1):
            response = self.client.post(path, json=body)
            if response.status_code == 503 and attempt < self.retries:
                time.sleep(float(response.headers.get("retry-after", "1")))
                continue
            if response.status_code != 200:
                raise RewardKitError(f"reward server {path} answered {response.status_code}: {response.text[:500]}")
            return response.json()
        raise RewardKitError(f"reward server {path} stayed busy after {self.retries} retries")

    def compare(self, prompts, responses_a, responses_b, both_orders: bool = True) -> list[float]:
        return self._post_split("/compare", {"prompts": [prompt_to_json(p) for p in prompts],
                                             "responses_a": list(responses_a), "responses_b": list(responses_b)},
                                {"both_orders": both_orders}, "probabilities")

    def compare_details(self, prompts, responses_a, responses_b, both_orders: bool = True) -> list[Comparison]:
        """The server returns averaged probabilities only: per-order figures are unknown here."""
        return [Comparison(p, None, None) for p in self.compare(prompts, responses_a, responses_b, both_orders)]

    def compare_to_references(self, prompts, responses, references) -> list[float]:
        return self._post_split("/reward", {"prompts": [prompt_to_json(p) for p in prompts],
                                            "responses": list(responses), "references": list(references)},
                                {}, "probabilities")

    def reward(self, prompts, responses, references=None, scale: str = "logodds") -> list[float]:
        if references is None:
            return self._post_split("/reward", {"prompts": [prompt_to_json(p) for p in prompts],
                                                "responses": list(responses)}, {}, "rewards")
        return [to_scale(p, scale) for p in self.compare_to_references(prompts, responses, references)]

    def score(self, prompts, responses) -> list[float]:
        """A pointwise server's raw rewards (what a local Bradley–Terry model's `score` gives)."""
        return self.reward(prompts, responses)

    def get_reward(self, queries: list[str], prompts: list[str] | None, labels: list | None) -> dict:
        """OpenRLHF's /get_reward, as the server answers it (split to fit its limits)."""
        merged: dict = {"rewards": [], "scores": [], "extra_logs": {}}
        for start, end in self._chunks(len(queries)):
            part = self._post("/get_reward", {"query": queries[start:end],
                                              "prompts": prompts[start:end] if prompts is not None else None,
                                              "labels": labels[start:end] if labels is not None else None})
            merged["rewards"] += part["rewards"]
            merged["scores"] += part["scores"]
            for key, values in (part.get("extra_logs") or {}).items():
                merged["extra_logs"].setdefault(key, []).extend(values)
        return merged

    def rank(self, prompt, responses: Sequence[str], strategy: str = "knockout", reference: str | None = None):
        """The server's /rank when the ranking fits its limits; else the same strategy run here
        over split /compare (or /reward) requests — the same comparisons, so the same result."""
        n, limits = len(responses), self.limits
        cost = n if self.pointwise else {"round_robin": n * (n - 1) // 2, "reference": n}.get(strategy, max(1, n - 1))
        if n <= limits["max_items"] and cost <= limits["max_rank_comparisons"]:
            data = self._post("/rank", {"prompt": prompt_to_json(prompt), "responses": list(responses),
                                        "strategy": strategy, "reference": reference})
            return RankResult(data["order"], data["scores"], data["strategy"], 0)
        if self.pointwise:
            scores = self.reward([prompt] * n, list(responses))
            return RankResult(sorted(range(n), key=lambda i: -scores[i]), scores, "pointwise", 0)
        from rewardkit.ranking.strategies import rank_responses

        return rank_responses(self, prompt, responses, strategy=strategy, reference=reference)
