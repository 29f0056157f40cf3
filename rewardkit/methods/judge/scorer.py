"""PairwiseJudge: a causal LM that answers "A" or "B" to the judge prompt.

P(a better than b) = softmax over the two verdict-token logits at the verdict position,
normalised within one presentation order, then averaged over both orders (position
debiasing). Pointwise rewards compare a response with a reference response.
"""

from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

import torch

from rewardkit.data.templates import PromptTemplate, default_judge_template
from rewardkit.data.tokenize import SegmentEncoder, label_token_ids
from rewardkit.models.heads import candidate_logits
from rewardkit.models.loading import load_causal_lm_or_adapter, scoring_length
from rewardkit.scoring.engine import ScoreRequest, ScoringEngine
from rewardkit.scoring.protocol import Comparison, ScorerOptions, compare_result, resolve_references, same_length, to_scale
from rewardkit.types import Prompt, prompt_to_text
from rewardkit.verifiers.observations import ToolContext, observe_pair


def verdict_probability_a(logits: torch.Tensor) -> torch.Tensor:
    """(N, 2) verdict logits → (N,) P(the answer shown first is better). Normalised over the two
    candidate tokens of the same row, never across rows (the reference demo's bug)."""
    return logits.float().softmax(dim=-1)[:, 0]


def single_order(prompt: Prompt, a: str, b: str) -> int:
    """A deterministic, seeded-by-content choice of order for single-order scoring: 0 = a first."""
    digest = hashlib.sha256(f"{prompt_to_text(prompt)}\x00{a}\x00{b}".encode()).digest()
    return digest[0] & 1


KIND = "generative_judge"


class PairwiseJudge:
    kind = KIND
    pointwise = False  # a reward needs a reference answer to compare with

    def __init__(self, model, tokenizer, template: PromptTemplate, *, max_length: int | None = None,
                 max_batch_tokens: int = 8192, use_prefix_cache: bool = True):
        template.require_pair_slots("judge template")
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.label_ids = torch.tensor(label_token_ids(tokenizer, template.labels))
        self.max_length = scoring_length(model, max_length)  # never a training cap unless asked for
        self.encoder = SegmentEncoder(tokenizer, template, self.max_length)
        self.engine = ScoringEngine(model, self._head, tokenizer.pad_token_id, max_batch_tokens=max_batch_tokens,
                                    use_prefix_cache=use_prefix_cache)
        # a tool-augmented judge (template with {observations}): each question's ToolContext by prompt text
        self.tool_contexts: dict[str, ToolContext] = {}

    def add_tool_contexts(self, pairs) -> int:
        """What each question gives the tools (the rows' `answer` and `tests` fields), for a judge
        whose template shows tool observations; returns how many questions gave anything."""
        if not self.template.observes:
            return 0
        for pair in pairs:
            context = ToolContext.from_extra(getattr(pair, "extra", None) or {})
            if context != ToolContext():
                self.tool_contexts[prompt_to_text(pair.prompt)] = context
        return len(self.tool_contexts)

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        return candidate_logits(self.model, hidden, self.label_ids.to(hidden.device))

    def _request(self, prompt: Prompt, first: str, second: str, share_through: str = "prompt") -> ScoreRequest:
        """Split at the start of slot `share_through` ('prompt' shares the template head only;
        'response_a' also shares the prompt; 'response_b' shares the first answer too)."""
        observations = ""
        if self.template.observes:
            observations = observe_pair(first, second, self.tool_contexts.get(prompt_to_text(prompt), ToolContext()))
        encoded = self.encoder.encode(prompt, first, second, observations=observations)
        cut = encoded.spans[share_through][0]
        return ScoreRequest(tuple(encoded.input_ids[:cut]), tuple(encoded.input_ids[cut:]))

    def compare(self, prompts: Sequence[Prompt], responses_a: Sequence[str], responses_b: Sequence[str],
                both_orders: bool = True, return_details: bool = False):
        """P(responses_a[i] is better than responses_b[i]) for each i (`return_details` is
        deprecated: use `compare_details`)."""
        details = self.compare_details(prompts, responses_a, responses_b, both_orders)
        return compare_result(details, return_details)

    def compare_details(self, prompts: Sequence[Prompt], responses_a: Sequence[str], responses_b: Sequence[str],
                        both_orders: bool = True) -> list[Comparison]:
        """Per pair: the averaged probability and each order's (None for an order not scored)."""
        same_length(prompts=prompts, responses_a=responses_a, responses_b=responses_b)
        requests, plan = [], []
        for prompt, a, b in zip(prompts, responses_a, responses_b):
            orders = (0, 1) if both_orders else (single_order(prompt, a, b),)
            plan.append(orders)
            for order in orders:
                first, second = (a, b) if order == 0 else (b, a)
                requests.append(self._request(prompt, first, second))
        p_first = verdict_probability_a(self.engine.run(requests)).tolist()
        results, cursor = [], 0
        for orders in plan:
            by_order = {}
            for order in orders:
                by_order[order] = p_first[cursor] if order == 0 else 1.0 - p_first[cursor]
                cursor += 1
            results.append(Comparison(sum(by_order.values()) / len(by_order), by_order.get(0), by_order.get(1)))
        return results

    def reward(self, prompts: Sequence[Prompt], responses: Sequence[str],
               references: Sequence[str] | Mapping[str, str] | None = None, scale: str = "logodds") -> list[float]:
        """How much better each response is than its prompt's reference response.

        scale='logodds' (default): log(p / (1 − p)) with p = P(response better than reference),
        both orders averaged; 0 means "as good as the reference", positive is better. Clipped
        to ±log(1e6). scale='prob': p itself, in (0, 1), 0.5 = as good as the reference.
        """
        refs = resolve_references(prompts, references)
        to_scale(0.5, scale)  # an unknown scale fails before any scoring
        probabilities = self.compare_to_references(prompts, responses, refs)
        return [to_scale(p, scale) for p in probabilities]

    def compare_to_references(self, prompts, responses, references) -> list[float]:
        """Like compare(responses, references) but shares the KV cache of the prompt and the
        reference answer across all candidates of a prompt (reference shown as A in one order)."""
        return [d.probability for d in self.reference_details(prompts, responses, references)]

    def reference_details(self, prompts, responses, references) -> list[Comparison]:
        """`compare_to_references` with each order's P(response better): p_ab with the response
        shown first, p_ba with the reference first (what the over-optimisation monitor reads)."""
        same_length(prompts=prompts, responses=responses, references=references)
        requests = []
        for prompt, response, reference in zip(prompts, responses, references):
            requests.append(self._request(prompt, reference, response, share_through="response_b"))  # ref first
            requests.append(self._request(prompt, response, reference, share_through="response_a"))  # response first
        p_first = verdict_probability_a(self.engine.run(requests)).tolist()
        details = []
        for i in range(len(responses)):
            second, first = 1.0 - p_first[2 * i], p_first[2 * i + 1]
            details.append(Comparison((second + first) / 2, first, second))
        return details

    @torch.no_grad()
    def pair_states(self, prompts: Sequence[Prompt], responses_a: Sequence[str], responses_b: Sequence[str]) -> torch.Tensor:
        """(N, H) pair representations: the final hidden state at the verdict position with a
        shown first minus the same with b first, halved. Swapping a and b negates it exactly;
        rows are batched like compare() (token budget, shared-prefix cache)."""
        same_length(prompts=prompts, responses_a=responses_a, responses_b=responses_b)
        requests = []
        for prompt, a, b in zip(prompts, responses_a, responses_b):
            requests += [self._request(prompt, a, b), self._request(prompt, b, a)]
        states = self.engine.with_head(lambda hidden: hidden).run(requests)
        return (states[0::2] - states[1::2]) / 2

    def rank(self, prompt: Prompt, responses: Sequence[str], strategy: str = "knockout", reference: str | None = None):
        from rewardkit.ranking import rank_responses

        return rank_responses(self, prompt, responses, strategy=strategy, reference=reference)


def load_judge(path: str, template: dict | None, options: ScorerOptions) -> PairwiseJudge:
    """A judge from a directory (full weights or a LoRA adapter) or any causal LM; `template`
    is the saved one (None: the default judge template)."""
    model, tokenizer = load_causal_lm_or_adapter(path, options.dtype, options.device, options.trust_remote_code,
                                                 merge=options.merge_adapters)
    return PairwiseJudge(model, tokenizer, PromptTemplate.from_dict(template) if template else default_judge_template(),
                         max_length=options.max_length, max_batch_tokens=options.max_batch_tokens,
                         use_prefix_cache=options.use_prefix_cache)
