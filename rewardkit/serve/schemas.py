"""Request and response bodies (pydantic). Prompts are text or lists of {role, content}."""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from rewardkit.errors import RewardKitError
from rewardkit.types import FieldProblem, prompt_from_json

ChatMessage = dict[str, Any]
PromptIn = Union[str, list[ChatMessage]]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CompareRequest(Strict):
    prompts: list[PromptIn]
    responses_a: list[str]
    responses_b: list[str]
    both_orders: bool = True


class RewardRequest(Strict):
    prompts: list[PromptIn]
    responses: list[str]
    references: Optional[list[str]] = None


class RankRequest(Strict):
    prompt: PromptIn
    responses: list[str] = Field(min_length=1)
    strategy: str = "knockout"
    reference: Optional[str] = None


class GetRewardRequest(BaseModel):
    """OpenRLHF's remote reward call; extra keys it may add are ignored."""

    query: list[str]
    prompts: Optional[list[Optional[str]]] = None
    labels: Optional[list[Any]] = None  # text, numbers (math answers) or null, per item


def to_prompt(value: PromptIn, where: str = "prompt"):
    """A request's prompt as a `Prompt`; a malformed message is a 400 naming its field."""
    try:
        return prompt_from_json(value, where)
    except FieldProblem as exc:
        raise RewardKitError(f"{exc.field}: {exc}") from None
