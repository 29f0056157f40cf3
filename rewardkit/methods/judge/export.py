"""A pairwise judge as a standard one-logit sequence classifier.

The judge's verdict in one order is P(A) = σ(z_A − z_B), and z_A − z_B = h · (W_A − W_B)
(+ b_A − b_B) with h the final hidden state at the verdict position and W the LM head's rows
for the two verdict tokens. That is exactly an `…ForSequenceClassification` with one label
whose score row is W_A − W_B, read at the last token — the layout vLLM's classify/score
runners, TRL and OpenRLHF load. The judge prompt goes with it: `config.json` holds
`rewardkit_judge` (the full prompt with `{prompt}`, `{response_a}`, `{response_b}` slots, the
verdict labels, and what a positive logit means).
"""

from __future__ import annotations

from pathlib import Path

import torch

from rewardkit.errors import ModelError
from rewardkit.models.hf_compat import make_compatible


def export_sequence_classifier(judge, output: str | Path) -> Path:
    """Writes `judge` (a PairwiseJudge) to `output` as a one-label sequence classifier."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from rewardkit.data.templates import render_segments

    output = Path(output)
    source = judge.model
    config = AutoConfig.for_model(**{**source.config.to_dict(), "num_labels": 1})
    config.pad_token_id = judge.tokenizer.pad_token_id
    # problem_type stays unset: vLLM then applies the sigmoid, P(A) (models/vllm_layout.py)
    try:
        classifier = AutoModelForSequenceClassification.from_config(config)
    except ValueError as exc:
        raise ModelError(f"export: {type(source).__name__} has no sequence-classification form ({exc})") from None
    missing = classifier.load_state_dict(_backbone_state(source, classifier), strict=False).missing_keys
    head = _score_head(classifier)
    if [k for k in missing if not k.startswith(_head_name(classifier))]:
        raise ModelError(f"export: backbone weights did not map onto the classifier (missing {missing[:3]})")
    weight = source.get_output_embeddings().weight.detach().float()
    a, b = judge.label_ids.tolist()
    with torch.no_grad():
        head.weight.copy_((weight[a] - weight[b])[None].to(head.weight.dtype))
        if head.bias is not None:
            bias = getattr(source.get_output_embeddings(), "bias", None)
            head.bias.fill_(0.0 if bias is None else float(bias[a] - bias[b]))
    segments = render_segments(judge.template, judge.tokenizer)
    classifier.config.rewardkit_judge = {
        "prompt": "".join("{" + slot + "}" if slot else text for slot, text in segments),
        "labels": list(judge.template.labels),
        "meaning": "sigmoid(logit) = P(response_a is better than response_b) in this one order; "
                   "average with 1 - sigmoid of the swapped order to remove position bias"}
    output.mkdir(parents=True, exist_ok=True)
    classifier.save_pretrained(output, safe_serialization=True)
    judge.tokenizer.save_pretrained(output)
    make_compatible(output)  # loads the same in older transformers (models/hf_compat.py)
    return output


def _backbone_state(source, classifier) -> dict:
    """The causal LM's body weights under the classifier's body prefix."""
    prefix = classifier.base_model_prefix
    body = getattr(source, source.base_model_prefix)
    return {f"{prefix}.{k}": v for k, v in body.state_dict().items()}


def _head_name(classifier) -> str:
    return "score" if hasattr(classifier, "score") else "classifier"


def _score_head(classifier):
    head = getattr(classifier, _head_name(classifier))
    if not isinstance(head, torch.nn.Linear):
        raise ModelError(f"export: {type(classifier).__name__}'s head is not a single linear layer")
    return head
