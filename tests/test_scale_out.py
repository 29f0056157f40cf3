"""Scale-out on 2 CPU cores with gloo: FSDP2 training equals one process, a rank killed with
SIGKILL resumes to the uninterrupted weights from sharded checkpoints, and two "nodes" on
127.0.0.1 meet through torchrun's c10d rendezvous.

Tolerance, stated once: losses within 1e-5 and weights within 1e-4 of the one-process run with
the same global batch, in fp32. (Losses agree to ~1e-7; Adam turns the fp32 rounding of a
different reduction order in near-zero gradient entries into updates of order lr·1e-2: measured
2.2e-5 for Bradley–Terry at lr 1e-3 under DDP and FSDP alike, 5e-6 for the judge, 2e-6 for
pre-training.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from rewardkit import LoopConfig, load_reward_model, train_method
from rewardkit.errors import ConfigError
from rewardkit.models.manifest import read_manifest
from rewardkit.training.checkpoint import CheckpointError
from rewardkit.training.sharded_checkpoint import verify_sharded_checkpoint

WORKER = Path(__file__).with_name("distributed_worker.py")
LOSS_TOLERANCE, WEIGHT_TOLERANCE = 1e-5, 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def options(tmp_path, model_dir, data, **changes) -> dict:
    base = dict(model=str(model_dir), data=[str(data)], max_steps=3, batch_size=8, lr=1e-3, max_length=512,
                save_every=1000, mixed_precision="no", warmup_ratio=0.0, seed=0)
    base.update(changes)
    return base


def torchrun(job: dict, *, processes: int = 2, extra: tuple = (), timeout: int = 300) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), *extra]
    if not extra:
        launcher += ["--master_port", str(free_port())]
    return subprocess.run([*launcher, str(WORKER), json.dumps(job)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def losses(output) -> list[float]:
    return [json.loads(line)["loss"] for line in (Path(output) / "metrics.jsonl").read_text().splitlines()
            if '"loss"' in line]


def assert_same_run(a, b) -> None:
    assert losses(a) == pytest.approx(losses(b), abs=LOSS_TOLERANCE)
    first, second = load_file(Path(a) / "model.safetensors"), load_file(Path(b) / "model.safetensors")
    assert sorted(first) == sorted(second)  # the same tensors under the same names (a tied head kept once)
    assert max((first[k] - second[k]).abs().max().item() for k in first) < WEIGHT_TOLERANCE


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    import random

    rng = random.Random(0)
    rows = [{"prompt": f"question {i}?", "chosen": rng.choice(["good answer", "correct and helpful", "yes sure good"]),
             "rejected": rng.choice(["bad wrong", "sorry cannot", "harmful bad"]) + " no" * (i % 5)} for i in range(48)]
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("method", ["judge", "bradley_terry", "pretrain"])
def test_fsdp_on_two_processes_trains_what_one_process_trains(tmp_path, tiny_model_dir, pairs, method):
    two = torchrun({"method": method, **options(tmp_path, tiny_model_dir, pairs, batch_size=4, fsdp=True,
                                                output=str(tmp_path / "two"))})
    assert two.returncode == 0, two.stderr[-3000:]
    train_method(method, LoopConfig(**options(tmp_path, tiny_model_dir, pairs, output=str(tmp_path / "one"))))
    assert_same_run(tmp_path / "two", tmp_path / "one")
    # the model is an ordinary Hugging Face directory that one process loads
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert not config["architectures"][0].startswith("FSDP")
    assert read_manifest(tmp_path / "two").precision == {"weights": "fp32", "autocast": None}
    if method != "pretrain":
        scorer = load_reward_model(str(tmp_path / "two"))
        assert len(scorer.compare(["question 1?"], ["good answer"], ["bad wrong"])) == 1


@pytest.mark.parametrize("method, merge", [("judge", False), ("bradley_terry", True)])
def test_lora_under_fsdp_trains_what_one_process_trains_and_saves_adapters_or_merged_weights(tmp_path, tiny_model_dir,
                                                                                             pairs, method, merge):
    two = torchrun({"method": method, **options(tmp_path, tiny_model_dir, pairs, batch_size=4, fsdp=True, lora=True,
                                                merge_lora=merge, output=str(tmp_path / "two"))})
    assert two.returncode == 0, two.stderr[-3000:]
    train_method(method, LoopConfig(**options(tmp_path, tiny_model_dir, pairs, lora=True, merge_lora=merge,
                                              output=str(tmp_path / "one"))))
    assert losses(tmp_path / "two") == pytest.approx(losses(tmp_path / "one"), abs=LOSS_TOLERANCE)
    weights = "model.safetensors" if merge else "adapter_model.safetensors"  # merged: one ordinary model
    first, second = load_file(tmp_path / "one" / weights), load_file(tmp_path / "two" / weights)
    assert sorted(first) == sorted(second) and any("lora" in k for k in first) is not merge
    assert max((first[k] - second[k]).abs().max().item() for k in first) < WEIGHT_TOLERANCE
    question = (["question 1?"], ["good answer"], ["bad wrong"])
    assert load_reward_model(str(tmp_path / "two")).compare(*question) == pytest.approx(
        load_reward_model(str(tmp_path / "one")).compare(*question), abs=1e-6)


def test_a_rank_killed_mid_run_resumes_from_sharded_checkpoints_to_the_uninterrupted_weights(tmp_path, tiny_model_dir,
                                                                                          pairs):
    job = {"method": "judge", **options(tmp_path, tiny_model_dir, pairs, batch_size=4, fsdp=True, max_steps=8,
                                        save_every=3, output=str(tmp_path / "killed"))}
    killed = torchrun({**job, "kill_rank_at": {"rank": 1, "step": 5}})
    assert killed.returncode != 0  # rank 1 died by SIGKILL after step 5; the step-3 checkpoint is what is left
    checkpoints = sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir())
    assert checkpoints == ["step-0000003"] and not (tmp_path / "killed" / "rewardkit.json").exists()
    resumed = torchrun({**job, "resume": True})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    train_method("judge", LoopConfig(**options(tmp_path, tiny_model_dir, pairs, max_steps=8,
                                               output=str(tmp_path / "steady"))))
    assert_same_run(tmp_path / "killed", tmp_path / "steady")


def test_a_damaged_shard_is_named_before_anything_loads(tmp_path, tiny_model_dir, pairs):
    job = {"method": "bradley_terry", **options(tmp_path, tiny_model_dir, pairs, batch_size=4, fsdp=True, max_steps=3,
                                                save_every=2, output=str(tmp_path / "run"))}
    assert torchrun(job).returncode == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "step-0000002"
    assert verify_sharded_checkpoint(checkpoint)["step"] == 2
    shard = checkpoint / "__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(CheckpointError, match=r"__1_0\.distcp: its contents changed"):
        verify_sharded_checkpoint(checkpoint)


def test_two_nodes_meet_through_c10d_rendezvous_and_train_what_one_process_trains(tmp_path, tiny_model_dir, pairs):
    """Two torchrun launches, one process each, as two machines would start them."""
    port = free_port()
    job = {"method": "judge", **options(tmp_path, tiny_model_dir, pairs, batch_size=4, fsdp=True,
                                        output=str(tmp_path / "nodes"))}
    rendezvous = ("--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "rk")
    launches = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1", *rendezvous,
                                  str(WORKER), json.dumps(job)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}) for _ in range(2)]
    results = [launch.communicate(timeout=300) for launch in launches]
    assert all(launch.returncode == 0 for launch in launches), [err[-2000:] for _, err in results]
    train_method("judge", LoopConfig(**options(tmp_path, tiny_model_dir, pairs, output=str(tmp_path / "one"))))
    assert_same_run(tmp_path / "nodes", tmp_path / "one")


def test_fsdp_refuses_what_it_cannot_do_before_any_model_loads():
    with pytest.raises(ConfigError, match="--cache-frozen does not work with --fsdp"):
        LoopConfig(fsdp=True, train_layers=2, cache_frozen=True)


# ---- sharded scoring ------------------------------------------------------------------------

def test_batches_are_split_by_tokens_deterministically():
    from rewardkit.scoring.distributed import balance

    parts = balance([100, 10, 60, 40, 30, 20], 2)
    assert sorted(i for part in parts for i in part) == list(range(6))
    loads = [sum([100, 10, 60, 40, 30, 20][i] for i in part) for part in parts]
    assert abs(loads[0] - loads[1]) <= 10 and parts == balance([100, 10, 60, 40, 30, 20], 2)
    assert balance([5, 5], 3)[2] == []  # more processes than batches: some get none


def test_two_processes_share_the_scoring_and_get_exactly_one_process_numbers(tmp_path, tiny_model_dir, pairs):
    report = str(tmp_path / "rank{rank}.json")
    result = torchrun({"score": {"model": str(tiny_model_dir), "pairs": str(pairs), "report": report}},
                      extra=("--master_port", str(free_port())))
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads(Path(report.format(rank=r)).read_text()) for r in (0, 1)]
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    scorer = load_reward_model(str(tiny_model_dir), dtype="fp32")
    alone = scorer.compare([r["prompt"] for r in rows], [r["chosen"] for r in rows], [r["rejected"] for r in rows])
    assert ranks[0]["p"] == alone and ranks[1]["p"] == alone  # bit for bit, on every process
    assert all(r["rows_run_here"] > 0 for r in ranks)  # both processes ran forward passes …
    assert sum(r["rows_run_here"] for r in ranks) == scorer.engine.stats["rows"]  # … and no row twice


def launch(arguments: list, processes: int) -> subprocess.CompletedProcess:
    """`rewardkit …` in one process (as a user types it) or under torchrun with `processes`."""
    launcher = [sys.executable, "-m", "rewardkit.cli.main"] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port",
        str(free_port()), "-m", "rewardkit.cli.main"]
    return subprocess.run([*launcher, *arguments], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("command", ["score", "eval", "label", "embed", "audit"])
def test_scoring_commands_on_two_processes_write_what_one_process_writes(tmp_path, tiny_model_dir, pairs, command):
    from typer.testing import CliRunner

    from rewardkit.cli.main import app

    data = pairs
    if command == "label":
        rows = [json.loads(line) for line in pairs.read_text().splitlines()]
        data = tmp_path / "candidates.jsonl"
        data.write_text("".join(json.dumps({"prompt": r["prompt"], "responses": [r["chosen"], r["rejected"], "maybe"]})
                                + "\n" for r in rows[:12]))
    if command == "audit":  # labels swapped: the tiny model's slight preference then disagrees with them
        data = tmp_path / "swapped.jsonl"
        data.write_text("".join(json.dumps({**r, "chosen": r["rejected"], "rejected": r["chosen"]}) + "\n"
                                for r in map(json.loads, pairs.read_text().splitlines())))
    name = {"eval": "out", "embed": "out.parquet"}.get(command, "out.jsonl")
    outputs = {n: tmp_path / f"{n}-process" / name for n in (1, 2)}
    extra = ["--dtype", "fp32", *(["--confidence", "0.50005"] if command == "audit" else [])]
    arguments = {n: [command, "--model", str(tiny_model_dir), "--data", str(data), "--output", str(outputs[n]), *extra]
                 for n in (1, 2)}
    alone = CliRunner().invoke(app, arguments[1])
    assert alone.exit_code == 0, alone.output
    two = launch(arguments[2], 2)
    assert two.returncode == 0, two.stderr[-3000:]
    written = {n: outputs[n] / "scores.jsonl" if command == "eval" else outputs[n] for n in (1, 2)}
    assert written[1].stat().st_size > 0  # something to compare: audit flags some pairs at this confidence
    assert written[1].read_bytes() == written[2].read_bytes()
    if command == "eval":
        first, second = (json.loads((outputs[n] / "results.json").read_text()) for n in (1, 2))
        assert first["accuracy"] == second["accuracy"] and first["ece"] == second["ece"]


def test_the_teacher_pass_of_distill_is_shared_and_its_verdicts_serve_any_number_of_processes(tmp_path, tiny_model_dir,
                                                                                              pairs):
    common = ["distill", "--teacher", str(tiny_model_dir), "--student", str(tiny_model_dir), "--data", str(pairs),
              "--max-steps", "2", "--batch-size", "8", "--mixed-precision", "no", "--dtype", "fp32",
              "--throughput-prompts", "2"]
    for n in (1, 2):
        result = launch([*common, "--output", str(tmp_path / f"p{n}")], n)
        assert result.returncode == 0, result.stderr[-3000:]
    verdicts = {n: tmp_path / f"p{n}" / "teacher_verdicts.json" for n in (1, 2)}
    assert verdicts[1].read_bytes() == verdicts[2].read_bytes()  # shared by 2 processes, one process's numbers
    assert json.loads((tmp_path / "p2" / "distill.json").read_text())["labels_reused"] is False
    again = launch([*common, "--output", str(tmp_path / "p2"), "--max-steps", "1"], 1)  # 2 processes saved, 1 reads
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "p2" / "distill.json").read_text())["labels_reused"] is True
    assert "the teacher's verdicts from" in again.stderr


def test_the_pool_pass_of_self_training_is_shared_and_resumes_with_another_number_of_processes(tmp_path,
                                                                                               tiny_model_dir, pairs):
    import shutil

    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    unlabeled = tmp_path / "pool.jsonl"
    unlabeled.write_text("".join(json.dumps({"prompt": r["prompt"], "response_a": r["rejected"],
                                             "response_b": r["chosen"]}) + "\n" for r in rows))
    output = tmp_path / "st"
    arguments = ["self-train", "--model", str(tiny_model_dir), "--labeled", str(pairs), "--unlabeled", str(unlabeled),
                 "--rounds", "1", "--keep-share", "0.5", "--max-steps", "2", "--batch-size", "8",
                 "--mixed-precision", "no", "--dtype", "fp32", "--output", str(output)]
    alone = launch(arguments, 1)
    assert alone.returncode == 0, alone.stderr[-3000:]
    one_process = (output / "verdicts-1.json").read_bytes()
    shutil.rmtree(output / "round-1")
    (output / "verdicts-1.json").unlink()
    two = launch(arguments, 2)  # round 0 is kept; the pool pass is scored again, shared by 2 processes
    assert two.returncode == 0, two.stderr[-3000:]
    assert "round 0 already done" in two.stderr
    assert (output / "verdicts-1.json").read_bytes() == one_process
    shutil.rmtree(output / "round-1")
    resumed = launch(arguments, 1)  # 2 processes saved the verdicts, 1 reuses them
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "the pool's verdicts from" in resumed.stderr


@pytest.mark.parametrize("stage", [2, 3])
def test_the_deepspeed_configs_load_through_accelerates_plugin_as_the_loop_needs_them(stage):
    """DeepSpeed itself is not installed here (see docs/scale-out.md); its accelerate plugin is,
    and it reads our configs: the ZeRO stage, the loop's own gradient clipping (1.0), and for
    ZeRO-3 the 16-bit gather on save that lets one process write the whole final model."""
    import yaml
    from accelerate.utils import DeepSpeedPlugin

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "accelerate"
                             / f"deepspeed_zero{stage}.yaml").read_text())
    assert config["distributed_type"] == "DEEPSPEED" and config["mixed_precision"] == "bf16"
    plugin = DeepSpeedPlugin(**config["deepspeed_config"])
    zero = plugin.deepspeed_config["zero_optimization"]
    assert plugin.zero_stage == stage and zero["stage"] == stage
    assert plugin.deepspeed_config["gradient_clipping"] == 1.0  # what the loop clips to (training/loop.py)
    assert zero["stage3_gather_16bit_weights_on_model_save"] is (stage == 3)
