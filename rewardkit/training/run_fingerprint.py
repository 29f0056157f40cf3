"""What makes a training run the run it is, so `--resume` continues only the same run.

A checkpoint stores the fingerprint of the run that wrote it (in its state.json): a digest of
the training records and every option that changes the trajectory — the model, the method's own
options, learning rate, schedule, batch, steps, seed, lengths, what trains. `--resume` with any of
them changed is refused, naming each change (it used to say "resuming from … (step 15)" and go
on, silently mixing two runs). Options that only change what is logged or saved (eval, logging,
checkpoint cadence, output) are left out; checkpoints written before fingerprints existed resume
as before.
"""

from __future__ import annotations

import dataclasses
import hashlib

from rewardkit.errors import ConfigError

TRAJECTORY = ("model", "data_format", "max_pairs", "epochs", "max_steps", "lr", "weight_decay", "warmup_ratio",
              "batch_size", "batch_tokens", "grad_accum", "max_length", "template", "lora", "lora_rank",
              "lora_alpha", "lora_targets", "train_layers", "dtype", "mixed_precision", "freeze_embeddings", "seed")


def run_fingerprint(loop, options, records) -> dict:
    """{option: value} for the trajectory options, the method's options, and the data digest."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(repr(record).encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    out = {name: _plain(getattr(loop, name)) for name in TRAJECTORY}
    if dataclasses.is_dataclass(options):
        out.update({f"method.{f.name}": _plain(getattr(options, f.name)) for f in dataclasses.fields(options)})
    out["data"] = f"{len(records)} records, sha256 {digest.hexdigest()[:16]}"
    return out


def check_same_run(saved: dict | None, current: dict, checkpoint) -> None:
    """ConfigError naming every option that differs from the run that wrote `checkpoint`."""
    if not saved:
        return  # a checkpoint from before fingerprints
    changed = [f"--{key.split('.', 1)[-1].replace('_', '-')}{' (data)' if key == 'data' else ''}: "
               f"{saved[key]!r} then, {current[key]!r} now"
               for key in sorted(set(saved) & set(current)) if saved[key] != current[key]]
    if changed:
        raise ConfigError(f"--resume: {checkpoint} belongs to another run; changed since it was written:\n  "
                          + "\n  ".join(changed) + "\n(resume with the same options and data, or start afresh "
                          "in another --output)")


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
