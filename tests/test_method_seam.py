"""The method seam, proven from outside the library: a toy method defined here (a pointwise
regression head: chosen responses → 1, rejected → 0) is registered, trained on in-memory data,
saved, reloaded, evaluated, ranked with and served — without touching a library file."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest
import torch
from fastapi.testclient import TestClient

from rewardkit import LoopConfig, load_reward_model, train_method
from rewardkit.data import load_pairs
from rewardkit.data.collate import pad_right
from rewardkit.data.templates import PromptTemplate, default_reward_template
from rewardkit.data.tokenize import SegmentEncoder
from rewardkit.eval import evaluate_files
from rewardkit.methods import MethodSpec, Prepared, method_for_kind, register_method
from rewardkit.models.heads import last_positions, value_rewards
from rewardkit.models.loading import load_classifier
from rewardkit.models.manifest import ModelManifest
from rewardkit.scoring import PointwiseScorer, RewardModel, ScoreRequest, ScoringEngine
from rewardkit.serve.app import ServeSettings, create_app
from rewardkit.training.model_setup import load_for_training

KIND = "toy_regression"


@dataclass
class ToyConfig:
    chosen_target: float = 1.0


class ToyTask:
    sequence_keys = ("input_ids",)

    def __init__(self, loop, options, *, freeze_embeddings=False):
        self.loop, self.options, self.freeze = loop, options, freeze_embeddings

    def read(self, source):
        return load_pairs(source).records

    def build(self):
        model, self.tokenizer = load_for_training(self.loop, value_head=True, freeze_embeddings=self.freeze)
        self.encoder = SegmentEncoder(self.tokenizer, default_reward_template(), self.loop.max_length)
        return model, self.tokenizer

    def prepare(self, pairs, *, for_eval=False):
        features = []
        for index, pair in enumerate(pairs):
            for response, target in ((pair.chosen, self.options.chosen_target), (pair.rejected, 0.0)):
                features.append({"input_ids": self.encoder.encode(pair.prompt, response).input_ids,
                                 "target": target, "pair": index})
        return Prepared(features, 0, len(pairs))

    def collate(self, features):
        ids, mask = pad_right([f["input_ids"] for f in features], self.tokenizer.pad_token_id)
        return {"input_ids": ids, "attention_mask": mask, "target": torch.tensor([f["target"] for f in features])}

    def forward(self, backbone, hidden, batch):
        return value_rewards(backbone, last_positions(hidden, batch["attention_mask"]))

    def loss(self, forward, batch):
        return torch.nn.functional.mse_loss(forward(batch), batch["target"]), {}

    @torch.inference_mode()
    def evaluate(self, forward, batches):
        errors = [torch.nn.functional.mse_loss(forward(b), b["target"]).item() for b in batches]
        return {"eval_mse": sum(errors) / len(errors)}

    def manifest(self):
        return ModelManifest(kind=KIND, template=default_reward_template().to_dict(), base_model=self.loop.model)


class ToyScorer(PointwiseScorer):
    kind = KIND

    def __init__(self, model, tokenizer, template):
        self.encoder = SegmentEncoder(tokenizer, template, 512)
        self.engine = ScoringEngine(model, lambda h: value_rewards(model, h)[:, None], tokenizer.pad_token_id)

    def score(self, prompts, responses):
        ids = [self.encoder.encode(p, r).input_ids for p, r in zip(prompts, responses)]
        return self.engine.run([ScoreRequest((), tuple(i)) for i in ids])[:, 0].tolist()


def load_toy(path, template, options):
    model, tokenizer = load_classifier(path, dtype="fp32")
    return ToyScorer(model, tokenizer, PromptTemplate.from_dict(template))


class ToyMethod(MethodSpec):
    name, kind, Config, Task = KIND, KIND, ToyConfig, ToyTask
    freeze_embeddings = False  # a random tiny model's embeddings carry nothing worth freezing
    loader = staticmethod(load_toy)


def rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": f"question {i}?", "chosen": rng.choice(["good answer", "correct and helpful", "yes sure good"]),
             "rejected": rng.choice(["bad wrong", "sorry cannot", "harmful bad"])} for i in range(n)]


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory, tiny_model_dir):
    register_method(ToyMethod(), replace=True)
    out = tmp_path_factory.mktemp("toy") / "model"
    loop = LoopConfig(model=str(tiny_model_dir), data=rows(48, 0), eval_data=rows(16, 1), output=str(out),
                      max_steps=40, lr=3e-3, batch_size=8, max_length=512, warmup_ratio=0.0, save_every=1000,
                      mixed_precision="no")
    summary = train_method(KIND, loop)
    assert summary["eval_mse"] < 0.5 * summary["initial_eval_mse"], summary
    return out


def test_registered_method_is_found_by_kind():
    register_method(ToyMethod(), replace=True)
    assert isinstance(method_for_kind(KIND), ToyMethod)


def test_toy_method_trains_reloads_evaluates_and_ranks(toy_dir, tmp_path):
    scorer = load_reward_model(toy_dir)
    assert isinstance(scorer, ToyScorer) and isinstance(scorer, RewardModel)
    assert json.loads((toy_dir / "rewardkit.json").read_text())["kind"] == KIND
    held = tmp_path / "held.jsonl"
    held.write_text("".join(json.dumps(r) + "\n" for r in rows(20, 2)))
    results, _ = evaluate_files(scorer, [held])
    assert results["num_pairs"] == 20 and results["accuracy"] >= 0.9
    ranked = scorer.rank("question?", ["bad wrong", "sorry cannot", "good answer"])
    assert ranked.best == 2 and ranked.comparisons == 0


def test_toy_method_is_served_and_batched(toy_dir):
    scorer = load_reward_model(toy_dir)
    client = TestClient(create_app(scorer, ServeSettings()))
    assert client.get("/health").json()["kind"] == KIND
    res = client.post("/reward", json={"prompts": ["q", "q"], "responses": ["good answer", "bad wrong"]})
    assert res.status_code == 200
    assert res.json()["rewards"] == pytest.approx(scorer.reward(["q", "q"], ["good answer", "bad wrong"]), abs=1e-5)
    res = client.post("/compare", json={"prompts": ["q"], "responses_a": ["good answer"], "responses_b": ["bad wrong"]})
    assert res.json()["probabilities"][0] > 0.5
    res = client.post("/rank", json={"prompt": "q", "responses": ["bad wrong", "good answer"]})
    assert res.json()["best"] == 1
