"""rewardkit side by side with what our users would pick instead, in one run, on one machine.

Three comparisons, same model (SmolLM2-135M-Instruct), same rows in the same order, same steps
and global batch, same precision (bf16 autocast where the CPU/GPU computes bf16 natively, else
fp32), same trainable parameters (embeddings train on both sides), same learning-rate schedule:

  bt      TRL's RewardTrainer (the version installed; 1.16 when written) vs `rewardkit train-bt`.
          TRL gets rewardkit's token ids (its pre-tokenized `chosen_ids`/`rejected_ids` input) in
          rewardkit's epoch order with sequential sampling, and starts from the same
          sequence-classification checkpoint (one seeded head): both see the same batches, so
          their step-0 losses agree and their curves stay close.
  judge   a generic causal-LM SFT step — transformers' Trainer with label smoothing over the
          vocabulary, the prompt masked, the verdict token the label (how GRAM's LLaMA-Factory
          code trains its judge) — vs `rewardkit finetune` (verdict-token logits only, smoothing
          over the two labels). Different losses by definition, so the check is the held-out
          two-label loss and accuracy after the same steps.
  score   transformers' text-classification pipeline (RewardBench-style batched scoring, batch 8)
          vs rewardkit's scoring engine (what `rewardkit eval` runs), on the trained BT model.

Beside them, rewardkit against itself on long multi-turn rows (HH-RLHF): padded batches (fixed
batch or the token budget) vs padding-free packing (`--packing rows`) vs shared-prompt packing
(`--packing shared`), over one epoch of the same rows.

Every arm runs in its own process (its peak RSS is its own). Tokens are the real tokens of the
rows an arm trained or scored; time runs from the first optimizer step to the last (training)
or over the scoring call. Held-out numbers are computed the same way for every trained model:
a plain fp32 transformers forward, one row at a time.

    python bench/peers.py --output runs/peers            # the full run (docs/results.md, docs/peers.json)
    python bench/peers.py --quick --output runs/peers-q  # the same ratios on fewer rows (≤ ~5 minutes)
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA, cpu_class, hardware  # noqa: E402

DATA = "hh_rlhf_helpful_test_rmgallery.jsonl"  # multi-turn dialogues: long shared prompts
SIZES = {  # (BT steps, judge steps, batch, held-out pairs, scored pairs, packing-epoch pairs)
    "quick": dict(bt_steps=4, judge_steps=4, batch=4, held=16, scored=24, epoch_pairs=16),
    "full": dict(bt_steps=24, judge_steps=24, batch=8, held=64, scored=128, epoch_pairs=96),
}
LR, WARMUP = 1e-5, 0.05
PACKING_ARMS = {  # (label, --packing, with the token budget)
    "full": (("padded, fixed batch", "off", False), ("padded, token budget", "off", True),
             ("packed rows, fixed batch", "rows", False), ("packed rows, token budget", "rows", True),
             ("shared prompt, fixed batch", "shared", False), ("shared prompt, token budget", "shared", True)),
    "quick": (("padded, token budget", "off", True), ("shared prompt, token budget", "shared", True)),
}


# ----------------------------------------------------------------------------- data and setup

def load_rows(args) -> dict:
    """Training, held-out and scoring rows from HH-RLHF (helpful), each fitting --max-length
    for both BT rows and the judge's prompt, so no side truncates."""
    from rewardkit.data import load_pairs
    from rewardkit.data.templates import default_judge_template, default_reward_template
    from rewardkit.data.tokenize import SegmentEncoder
    from rewardkit.models.loading import load_tokenizer, resolve_model_path

    tokenizer = load_tokenizer(resolve_model_path(args.model))
    bt = SegmentEncoder(tokenizer, default_reward_template(), 10**6)
    judge = SegmentEncoder(tokenizer, default_judge_template(), 10**6)
    fitting = []
    for pair in load_pairs(str(SHARED_DATA / DATA)).records:
        longest = max(len(bt.encode(pair.prompt, pair.chosen).input_ids), len(bt.encode(pair.prompt, pair.rejected).input_ids),
                      len(judge.encode(pair.prompt, pair.chosen, pair.rejected).input_ids))
        if longest <= args.max_length:
            fitting.append({"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected})
    size = SIZES[args.size]
    bt_rows, judge_rows = size["bt_steps"] * size["batch"], size["judge_steps"] * size["batch"] // 2
    cuts = [bt_rows, judge_rows, size["held"], size["scored"], size["epoch_pairs"]]
    if sum(cuts) > len(fitting):
        raise SystemExit(f"{DATA}: {len(fitting)} pairs fit --max-length {args.max_length}; {sum(cuts)} needed")
    sets, start = {}, 0
    for name, count in zip(("bt", "judge", "held", "scored", "epoch"), cuts):
        sets[name], start = fitting[start:start + count], start + count
    return sets


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def make_bt_start(args, directory: Path) -> Path:
    """SmolLM2 with one seeded value head, the starting point of both BT trainers."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardkit.models.loading import resolve_model_path

    if (directory / "config.json").is_file():
        return directory
    path = resolve_model_path(args.model)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32,
                                                               use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def native_bf16() -> bool:
    import torch

    from rewardkit.models.precision import bf16_supported

    return bf16_supported(torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def use_bf16(args) -> bool:
    """Both sides train in bf16 autocast where it is native (rewardkit's default), unless --precision fp32."""
    return args.precision == "auto" and native_bf16()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- rewardkit arms

def loop_config(args, spec: dict, output: Path, data: Path, model: str):
    from rewardkit.training import LoopConfig

    size = SIZES[args.size]
    budget = spec.get("batch_tokens")
    return LoopConfig(model=model, data=[str(data)], output=str(output), lr=LR, warmup_ratio=WARMUP,
                      batch_size=size["batch"], batch_tokens=budget, max_length=args.max_length,
                      max_steps=spec.get("steps"), epochs=1.0, seed=0, save_every=10**6, freeze_embeddings=False,
                      gradient_checkpointing=True, packing=spec.get("packing", "off"),
                      mixed_precision="bf16" if use_bf16(args) else "no")


def run_rewardkit(args, spec: dict) -> dict:
    """One rewardkit training run; tokens/s over its optimizer steps."""
    from rewardkit.methods import get_method
    from rewardkit.methods.train import train_method

    method = get_method(spec["method"])
    options = method.Config(label_smoothing=0.1) if spec["method"] == "judge" else method.Config()
    loop = loop_config(args, spec, Path(spec["output"]), Path(spec["data"]), spec["model"])
    marks, steps = {}, []

    def on_event(kind: str, data: dict) -> None:
        if kind == "start":
            marks["start"] = time.perf_counter()
        elif kind == "step":
            marks["end"] = time.perf_counter()
            steps.append({"step": data["step"], "loss": data["loss"], "rows": data["rows"]})
        elif kind == "packing":
            marks["packing"] = data

    train_method(method, loop, options, on_event=on_event)
    return {"seconds": marks["end"] - marks["start"], "losses": [s["loss"] for s in steps], "steps": len(steps),
            "packing_used": marks.get("packing")}


# ----------------------------------------------------------------------------- peer arms

def rewardkit_order(args, spec: dict, method_name: str) -> list[dict]:
    """The features of the training rows in the order rewardkit's epoch 0 visits them."""
    from rewardkit.methods import get_method
    from rewardkit.training.batching import epoch_order

    method = get_method(method_name)
    options = method.Config(label_smoothing=0.1) if method_name == "judge" else method.Config()
    loop = loop_config(args, spec, Path(spec["output"]), Path(spec["data"]), spec["model"])
    task = method.task(loop, options)
    records = task.read(loop.data)
    task.build()
    features = task.prepare(records).features
    return epoch_order(task, features, loop.seed * 1000), task


class StepTimer:
    """A transformers TrainerCallback: time from the first step's start to the last step's end."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Timer(TrainerCallback):
            def __init__(self):
                self.start = self.end = None

            def on_step_begin(self, args, state, control, **kwargs):
                if self.start is None:
                    self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                self.end = time.perf_counter()

        return Timer()


def run_trl_bt(args, spec: dict) -> dict:
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer
    from trl import __version__ as trl_version

    from rewardkit.models.loading import load_tokenizer

    features, _ = rewardkit_order(args, spec, "bradley_terry")
    data = datasets.Dataset.from_list([{"chosen_ids": f["chosen"], "rejected_ids": f["rejected"]} for f in features])
    size = SIZES[args.size]
    config = RewardConfig(output_dir=spec["output"], per_device_train_batch_size=size["batch"], learning_rate=LR,
                          warmup_steps=int(WARMUP * spec["steps"]), lr_scheduler_type="linear", max_steps=spec["steps"], logging_steps=1,
                          save_strategy="no", report_to=[], bf16=use_bf16(args), gradient_checkpointing=True,
                          gradient_checkpointing_kwargs={"use_reentrant": False}, max_length=args.max_length,
                          train_sampling_strategy="sequential", seed=0, use_cpu=not _cuda(), weight_decay=0.0,
                          max_grad_norm=1.0, dataloader_num_workers=0)
    timer = StepTimer()
    model = AutoModelForSequenceClassification.from_pretrained(spec["model"], num_labels=1, dtype=torch.float32,
                                                               use_safetensors=True)
    trainer = RewardTrainer(model=model, args=config, train_dataset=data,
                            processing_class=load_tokenizer(spec["model"]), callbacks=[timer])
    trainer.train()
    trainer.save_model(spec["output"])
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"seconds": timer.end - timer.start, "losses": losses, "steps": len(losses), "version": trl_version}


def run_sft_judge(args, spec: dict) -> dict:
    """transformers' Trainer on the judge prompt + verdict token, label smoothing 0.1 over the vocabulary."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments
    from transformers import __version__ as transformers_version

    features, task = rewardkit_order(args, spec, "judge")
    label_ids = task.label_ids.tolist()
    rows = []
    for f in features:
        ids = list(f["input_ids"]) + [label_ids[f["target"]]]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * (len(ids) - 1) + [ids[-1]]})
    size = SIZES[args.size]
    config = TrainingArguments(output_dir=spec["output"], per_device_train_batch_size=size["batch"], learning_rate=LR,
                               warmup_steps=int(WARMUP * spec["steps"]), lr_scheduler_type="linear", max_steps=spec["steps"], logging_steps=1,
                               save_strategy="no", report_to=[], bf16=use_bf16(args), gradient_checkpointing=True,
                               gradient_checkpointing_kwargs={"use_reentrant": False}, label_smoothing_factor=0.1,
                               train_sampling_strategy="sequential", seed=0, use_cpu=not _cuda(), weight_decay=0.0,
                               max_grad_norm=1.0, dataloader_num_workers=0)
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32, use_safetensors=True)
    timer = StepTimer()
    trainer = Trainer(model=model, args=config, train_dataset=datasets.Dataset.from_list(rows),
                      data_collator=DataCollatorForSeq2Seq(task.tokenizer, padding=True), callbacks=[timer])
    trainer.train()
    trainer.save_model(spec["output"])
    task.tokenizer.save_pretrained(spec["output"])
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"seconds": timer.end - timer.start, "losses": losses, "steps": len(losses),
            "version": f"transformers {transformers_version}"}


def run_pipeline_score(args, spec: dict) -> dict:
    """RewardBench-style: the chat-template text of each row through a text-classification pipeline."""
    import torch
    from transformers import pipeline

    texts = [json.loads(line)["text"] for line in Path(spec["texts"]).read_text().splitlines()]
    dtype = torch.bfloat16 if spec.get("bf16") else torch.float32
    scorer = pipeline("text-classification", model=spec["model"], dtype=dtype, device=0 if _cuda() else -1)
    scorer(texts[:2], function_to_apply="none", batch_size=8)  # warm-up
    start = time.perf_counter()
    out = scorer(texts, function_to_apply="none", batch_size=8, truncation=True)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "scores": [o["score"] for o in out]}


def run_rewardkit_score(args, spec: dict) -> dict:
    from rewardkit import load_reward_model

    rows = [json.loads(line) for line in Path(spec["rows"]).read_text().splitlines()]
    model = load_reward_model(spec["model"], dtype=spec["dtype"])
    model.reward([rows[0]["prompt"]], [rows[0]["response"]])  # warm-up
    start = time.perf_counter()
    scores = model.reward([r["prompt"] for r in rows], [r["response"] for r in rows])
    return {"seconds": time.perf_counter() - start, "scores": [float(s) for s in scores]}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


ARMS = {"rewardkit": run_rewardkit, "trl_bt": run_trl_bt, "sft_judge": run_sft_judge,
        "pipeline_score": run_pipeline_score, "rewardkit_score": run_rewardkit_score}


def run_arm_process(args, kind: str, spec: dict) -> dict:
    """One arm in a fresh process: its result, its peak RSS."""
    command = [sys.executable, __file__, "--arm", kind, "--spec", json.dumps(spec), "--model", args.model,
               "--max-length", str(args.max_length), "--size", args.size, "--precision", args.precision]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"arm {kind} {spec.get('name')} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- held-out checks

def real_tokens(args, rows: list[dict], method: str) -> int:
    """Real tokens of the rows as rewardkit encodes them (BT: both sequences; judge: both orders)."""
    from rewardkit.data.templates import default_judge_template, default_reward_template
    from rewardkit.data.tokenize import SegmentEncoder
    from rewardkit.models.loading import load_tokenizer, resolve_model_path

    tokenizer = load_tokenizer(resolve_model_path(args.model))
    if method == "bradley_terry":
        encoder = SegmentEncoder(tokenizer, default_reward_template(), args.max_length)
        return sum(len(encoder.encode(r["prompt"], r[k]).input_ids) for r in rows for k in ("chosen", "rejected"))
    encoder = SegmentEncoder(tokenizer, default_judge_template(), args.max_length)
    return sum(len(encoder.encode(r["prompt"], a, b).input_ids) + 1 for r in rows
               for a, b in ((r["chosen"], r["rejected"]), (r["rejected"], r["chosen"])))


def heldout_bt(args, directory: str, rows: list[dict]) -> dict:
    """Accuracy and mean −log σ(r_c − r_r) of a sequence classifier, fp32, one row at a time."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from rewardkit.data.templates import default_reward_template
    from rewardkit.data.tokenize import SegmentEncoder
    from rewardkit.models.loading import load_tokenizer

    model = AutoModelForSequenceClassification.from_pretrained(directory, dtype=torch.float32, use_safetensors=True).eval()
    encoder = SegmentEncoder(load_tokenizer(directory), default_reward_template(), args.max_length)
    gaps = []
    with torch.no_grad():
        for r in rows:
            chosen, rejected = (model(input_ids=torch.tensor([encoder.encode(r["prompt"], r[k]).input_ids])).logits[0, 0]
                                for k in ("chosen", "rejected"))
            gaps.append((chosen - rejected).item())
    return {"accuracy": sum(g > 0 for g in gaps) / len(gaps),
            "loss": sum(-math.log(1 / (1 + math.exp(-g))) if g > -30 else -g for g in gaps) / len(gaps)}


def heldout_judge(args, directory: str, rows: list[dict]) -> dict:
    """Accuracy (both orders averaged) and the two-label cross-entropy of a causal LM judge, fp32."""
    import torch
    from transformers import AutoModelForCausalLM

    from rewardkit.data.templates import default_judge_template
    from rewardkit.data.tokenize import SegmentEncoder, label_token_ids
    from rewardkit.models.loading import load_tokenizer

    tokenizer = load_tokenizer(directory)
    template = default_judge_template()
    labels = label_token_ids(tokenizer, template.labels)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, use_safetensors=True).eval()
    encoder = SegmentEncoder(tokenizer, template, args.max_length)
    right, losses = 0, []
    with torch.no_grad():
        for r in rows:
            p_chosen = []
            for first, second, target in ((r["chosen"], r["rejected"], 0), (r["rejected"], r["chosen"], 1)):
                ids = torch.tensor([encoder.encode(r["prompt"], first, second).input_ids])
                logits = model(input_ids=ids).logits[0, -1, labels].float()
                log_probs = logits.log_softmax(-1)
                losses.append(-log_probs[target].item())
                p_chosen.append(log_probs[target].exp().item())
            right += sum(p_chosen) / 2 > 0.5
    return {"accuracy": right / len(rows), "loss": sum(losses) / len(losses)}


# ----------------------------------------------------------------------------- the study

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--output", default="runs/peers")
    parser.add_argument("--quick", action="store_true", help="fewer rows and steps (≤ ~5 minutes on 2 CPU cores)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32"],
                        help="auto: bf16 autocast where native (rewardkit's default), else fp32; fp32: both sides in fp32 "
                             "(the step-1 losses then agree to fp32 rounding)")
    parser.add_argument("--json", default=None, help="also write the raw results here (docs/peers.json)")
    parser.add_argument("--only", default="bt,judge,score,packing", help="which comparisons to run")
    parser.add_argument("--arm", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.size = args.size or ("quick" if args.quick else "full")
    if args.arm:
        result = ARMS[args.arm](args, json.loads(args.spec))
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return
    from rewardkit.models.loading import resolve_model_path

    started = time.perf_counter()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    args.model = str(resolve_model_path(args.model))
    sets = load_rows(args)
    files = {name: write_jsonl(output / f"{name}.jsonl", rows) for name, rows in sets.items()}
    report = {"machine": hardware(), "cpu_class": cpu_class(), "precision": "bf16 autocast" if use_bf16(args) else "fp32",
              "settings": {"model": "SmolLM2-135M-Instruct", "data": DATA, "max_length": args.max_length,
                           "lr": LR, "warmup_ratio": WARMUP, **SIZES[args.size], "size": args.size,
                           "gradient_checkpointing": True, "embeddings": "trained on both sides"},
              "comparisons": {}}
    only = set(args.only.split(","))
    if "bt" in only or "score" in only:
        report["comparisons"]["bt"] = compare_bt(args, sets, files, output)
    if "bt" in only and use_bf16(args) and args.size == "full":  # the same-thing check without bf16 rounding
        check = argparse.Namespace(**{**vars(args), "precision": "fp32", "size": "quick"})
        report["comparisons"]["bt, fp32 check (quick size)"] = compare_bt(check, load_rows(check), files, output / "fp32")
    if "score" in only:
        report["comparisons"]["score"] = compare_scoring(args, sets, output)
    if "judge" in only:
        report["comparisons"]["judge"] = compare_judge(args, sets, files, output)
    if "packing" in only:
        report["comparisons"]["packing"] = compare_packing(args, sets, files, output)
    report["seconds"] = time.perf_counter() - started
    print_report(report)
    text = json.dumps(report, indent=2)
    (output / "peers.json").write_text(text)
    if args.json:
        Path(args.json).write_text(text)


def compare_bt(args, sets, files, output) -> dict:
    output.mkdir(parents=True, exist_ok=True)
    files = {"bt": write_jsonl(output / "bt.jsonl", sets["bt"])}
    start = str(make_bt_start(args, output / "start-bt"))
    steps = SIZES[args.size]["bt_steps"]
    tokens = real_tokens(args, sets["bt"], "bradley_terry")
    arms = {}
    for name, kind, extra in (("TRL RewardTrainer", "trl_bt", {}),
                              ("rewardkit train-bt", "rewardkit", {"method": "bradley_terry", "packing": "auto"})):
        spec = {"name": name, "model": start, "data": str(files["bt"]), "output": str(output / kind), "steps": steps,
                **extra}
        result = run_arm_process(args, kind, spec)
        result.update(tokens=tokens, tokens_per_s=tokens / result["seconds"], heldout=heldout_bt(args, spec["output"], sets["held"]))
        arms[name] = result
    ours, theirs = arms["rewardkit train-bt"]["losses"], arms["TRL RewardTrainer"]["losses"]
    return {"arms": arms, "baseline": "TRL RewardTrainer", "trained": str(output / "rewardkit"),
            "step_loss_max_difference": max(abs(a - b) for a, b in zip(ours, theirs)),
            "precision": "bf16 autocast" if use_bf16(args) else "fp32"}


def compare_scoring(args, sets, output) -> dict:
    from rewardkit.data.templates import default_reward_template
    from rewardkit.data.tokenize import SegmentEncoder
    from rewardkit.models.loading import load_tokenizer

    model = str(output / "rewardkit")
    tokenizer = load_tokenizer(model)
    encoder = SegmentEncoder(tokenizer, default_reward_template(), args.max_length)
    rows = [{"prompt": r["prompt"], "response": r[k]} for r in sets["scored"] for k in ("chosen", "rejected")]
    encoded = [encoder.encode(r["prompt"], r["response"]).input_ids for r in rows]
    tokens = sum(len(ids) for ids in encoded)
    texts = write_jsonl(output / "scored_texts.jsonl", [{"text": tokenizer.decode(ids)} for ids in encoded])
    scored = write_jsonl(output / "scored_rows.jsonl", rows)
    arms = {}
    precisions = ["fp32"] + (["bf16"] if native_bf16() else [])
    if args.size == "quick":  # the machine's own precision only: --quick stays near 5 minutes
        precisions = precisions[-1:]
    for precision in precisions:
        arms[f"transformers pipeline, {precision}"] = run_arm_process(
            args, "pipeline_score", {"model": model, "texts": str(texts), "bf16": precision == "bf16"})
        arms[f"rewardkit engine, {precision}"] = run_arm_process(
            args, "rewardkit_score", {"model": model, "rows": str(scored), "dtype": precision})
    arms["rewardkit engine, as trained"] = run_arm_process(args, "rewardkit_score", {"model": model, "rows": str(scored),
                                                                                     "dtype": "auto"})
    for result in arms.values():
        result.update(tokens=tokens, tokens_per_s=tokens / result["seconds"])
    for precision in precisions:  # each side against the other in the same precision
        peer, ours = arms[f"transformers pipeline, {precision}"], arms[f"rewardkit engine, {precision}"]
        peer["max_abs_difference"] = max(abs(a - b) for a, b in zip(peer["scores"], ours["scores"]))
        ours["baseline"] = f"transformers pipeline, {precision}"
    for result in arms.values():
        del result["scores"]
    arms["rewardkit engine, as trained"]["baseline"] = f"transformers pipeline, {precisions[-1]}"
    return {"arms": arms, "baseline": f"transformers pipeline, {precisions[0]}"}


def compare_judge(args, sets, files, output) -> dict:
    steps = SIZES[args.size]["judge_steps"]
    tokens = real_tokens(args, sets["judge"], "judge")
    arms = {}
    for name, kind, extra in (("generic SFT step (transformers Trainer)", "sft_judge", {}),
                              ("rewardkit finetune", "rewardkit", {"method": "judge", "packing": "auto"})):
        spec = {"name": name, "model": args.model, "data": str(files["judge"]), "output": str(output / f"judge-{kind}"),
                "steps": steps, **extra}
        result = run_arm_process(args, kind, spec)
        result.update(tokens=tokens, tokens_per_s=tokens / result["seconds"],
                      heldout=heldout_judge(args, spec["output"], sets["held"]))
        arms[name] = result
    before = heldout_judge(args, args.model, sets["held"])
    return {"arms": arms, "baseline": "generic SFT step (transformers Trainer)", "heldout_before": before}


def compare_packing(args, sets, files, output) -> dict:
    """One epoch of the same long rows: padded (fixed batch, token budget) vs packed."""
    start = str(make_bt_start(args, output / "start-bt"))
    budget = 4 * args.max_length * 2  # about 4 pairs of the longest rows per micro-batch
    tokens = {"bradley_terry": real_tokens(args, sets["epoch"], "bradley_terry"),
              "judge": real_tokens(args, sets["epoch"][: len(sets["epoch"]) // 2], "judge")}
    data = {"bradley_terry": files["epoch"], "judge": write_jsonl(output / "epoch_judge.jsonl",
                                                                  sets["epoch"][: len(sets["epoch"]) // 2])}
    arms = {}
    for method, model in (("bradley_terry", start), ("judge", args.model)):
        for label, packing, batch_tokens in PACKING_ARMS[args.size]:
            batch_tokens = budget if batch_tokens else None
            name = f"{method}: {label}"
            spec = {"name": name, "model": model, "data": str(data[method]), "method": method, "packing": packing,
                    "batch_tokens": batch_tokens, "output": str(output / f"pack-{method}-{packing}-{batch_tokens}")}
            result = run_arm_process(args, "rewardkit", spec)
            result.update(tokens=tokens[method], tokens_per_s=tokens[method] / result["seconds"])
            arms[name] = result
    return {"arms": arms, "baseline": {"bradley_terry": "bradley_terry: padded, token budget",
                                       "judge": "judge: padded, token budget"}}


def print_report(report: dict) -> None:
    print(f"machine: {report['machine']}")
    print(f"precision on both sides: {report['precision']}; settings: {json.dumps(report['settings'])}")
    for comparison, body in report["comparisons"].items():
        print(f"\n== {comparison} ==")
        if "step_loss_max_difference" in body:
            print(f"same batches on both sides ({body['precision']}): the step losses differ by at most "
                  f"{body['step_loss_max_difference']:.2e}")
        print(f"{'arm':<44} {'tokens/s':>9} {'x base':>7} {'peak RSS MB':>12} {'held-out acc':>13} {'held-out loss':>14} "
              f"{'loss step 1':>12} {'last loss':>10}")
        for name, arm in body["arms"].items():
            base = arm.get("baseline") or body["baseline"]
            base = base[name.split(":")[0]] if isinstance(base, dict) else base
            ratio = arm["tokens_per_s"] / body["arms"][base]["tokens_per_s"]
            held = arm.get("heldout", {})
            losses = arm.get("losses") or [float("nan")]
            print(f"{name:<44} {arm['tokens_per_s']:>9.0f} {ratio:>6.2f}x {arm['peak_rss_mb']:>12.0f} "
                  f"{held.get('accuracy', float('nan')):>13.3f} {held.get('loss', float('nan')):>14.4f} "
                  f"{losses[0]:>12.4f} {losses[-1]:>10.4f}")
            if "max_abs_difference" in arm:
                print(f"{'':<44} max |score − rewardkit's in the same precision| = {arm['max_abs_difference']:.2e}")
            if arm.get("packing_used"):
                print(f"{'':<44} packing: {arm['packing_used']['mode']} ({arm['packing_used']['reason']})")
    print(f"\nwall time {report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
