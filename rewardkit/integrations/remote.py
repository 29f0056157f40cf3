"""RemoteScorer: the scorer interface (compare, compare_to_references, reward, rank) over HTTP
to `rewardkit serve`, retrying politely when the server answers 503 with Retry-After."""

from __future__ import annotations

import time
from typing import Sequence

from rewardkit.errors import RewardKitError
from rewardkit.scoring.protocol import Comparison, RankResult, to_scale
from rewardkit.types import prompt_to_json


class RemoteScorer:
    kind = "remote"
    pointwise = False  # the server decides; rewards without references go to it as they are

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0, retries: int = 20):
        try:
            import httpx
        except ImportError:
            raise RewardKitError("RemoteScorer needs httpx: pip install 'rewardkit[serve]'") from None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.retries = retries

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
        return self._post("/compare", {"prompts": [prompt_to_json(p) for p in prompts], "responses_a": list(responses_a),
                                       "responses_b": list(responses_b), "both_orders": both_orders})["probabilities"]

    def compare_details(self, prompts, responses_a, responses_b, both_orders: bool = True) -> list[Comparison]:
        """The server returns averaged probabilities only: per-order figures are unknown here."""
        return [Comparison(p, None, None) for p in self.compare(prompts, responses_a, responses_b, both_orders)]

    def compare_to_references(self, prompts, responses, references) -> list[float]:
        return self._post("/reward", {"prompts": [prompt_to_json(p) for p in prompts], "responses": list(responses),
                                      "references": list(references)})["probabilities"]

    def reward(self, prompts, responses, references=None, scale: str = "logodds") -> list[float]:
        if references is None:
            return self._post("/reward", {"prompts": [prompt_to_json(p) for p in prompts],
                                          "responses": list(responses)})["rewards"]
        return [to_scale(p, scale) for p in self.compare_to_references(prompts, responses, references)]

    def get_reward(self, queries: list[str], prompts: list[str] | None, labels: list | None) -> dict:
        """OpenRLHF's /get_reward, as the server answers it."""
        return self._post("/get_reward", {"query": queries, "prompts": prompts, "labels": labels})

    def rank(self, prompt, responses: Sequence[str], strategy: str = "knockout", reference: str | None = None):
        data = self._post("/rank", {"prompt": prompt_to_json(prompt), "responses": list(responses), "strategy": strategy,
                                    "reference": reference})
        return RankResult(data["order"], data["scores"], data["strategy"], 0)
