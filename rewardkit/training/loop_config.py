"""The options every training method shares: what the loop, the backbone setup and the
frozen-block cache read. A method's own options live in its folder (`methods/<name>/config.py`).

Each field is documented once, in its `help` metadata: the CLI builds its flags from it.
`flag` metadata names a bool flag pair where the default `--x/--no-x` would read badly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from rewardkit.domains import COUNT, COUNT_OR_ZERO, NON_NEGATIVE, POSITIVE, SEED, SHARE, Domain, domain_problems
from rewardkit.errors import ConfigError
from rewardkit.files import output_problem
from rewardkit.models.precision import Precision, training_precision

PACKING_MODES = ("auto", "off", "rows", "shared")  # --packing (training/packing.py)


def _same_directory(a: str, b: str) -> bool:
    from pathlib import Path

    first, second = Path(a).expanduser(), Path(b).expanduser()
    return first.exists() and first.resolve() == second.resolve()


def option(default: Any = None, help: str = "", *, factory=None, flag: str | None = None,
           domain: Domain | None = None):
    """A configuration field: its help (the CLI's), a bool flag pair's name, and for a number
    the domain its values must lie in (rewardkit/domains.py), checked by flags and dataclass alike."""
    metadata = {"help": help, **({"flag": flag} if flag else {}), **({"domain": domain} if domain else {})}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class LoopConfig:
    model: str = option("smollm2-135m", "base model: built-in name, local directory or hub id")
    # files, or data in memory: a list of records or dicts, a datasets.Dataset (see data.load_pairs)
    data: Any = option(help="training file(s); repeat the flag for more", factory=list)
    output: str = option("runs/out", "output directory")
    eval_data: Any = option(help="held-out file(s) evaluated during and after training", factory=list)
    data_format: str = option("auto", "row shape of the data files (auto-detected per file)")
    max_pairs: int | None = option(None, "use only N records (seeded sample)", domain=COUNT)
    epochs: float = option(1.0, "passes over the data", domain=POSITIVE)
    max_steps: int | None = option(None, "optimizer steps; overrides --epochs", domain=COUNT)
    lr: float = option(2e-5, "peak learning rate (linear warm-up, then linear decay)", domain=POSITIVE)
    weight_decay: float = option(0.0, "AdamW weight decay", domain=NON_NEGATIVE)
    warmup_ratio: float = option(0.05, "share of the steps spent warming up", domain=SHARE)
    batch_size: int = option(4, "records per step and process (ignored with --batch-tokens)", domain=COUNT)
    batch_tokens: int | None = option(None, "batch by a token budget instead: rows of similar length together, "
                                            "rows × longest row ≤ N per micro-batch", domain=COUNT)
    grad_accum: int = option(1, "micro-batches per optimizer step", domain=COUNT)
    max_length: int = option(1024, "token limit per training row (truncation keeps the template)", domain=COUNT)
    template: str | None = option(None, "template file (YAML/JSON/text)")
    lora: bool = option(False, "train LoRA adapters (peft)")
    lora_rank: int = option(16, "LoRA rank", domain=COUNT)
    lora_alpha: int = option(32, "LoRA alpha", domain=COUNT)
    lora_targets: list[str] = option(help="module names for LoRA",
                                     factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    merge_lora: bool = option(False, "merge the adapters into the saved weights")
    train_layers: int | None = option(None, "partial fine-tuning: train only the top N blocks (+ final norm/head)",
                                     domain=COUNT)
    cache_frozen: bool = option(False, "with --train-layers: run the frozen blocks once per row and reuse their "
                                       "output (several x faster epochs)")
    packing: str = option("auto", "training batches without padding: off; rows (each row its own segment of a long "
                                  "sequence); shared (rows that start alike — a pair's prompt, a judge's two orders — "
                                  "computed once); auto: shared where it saves tokens, else off (docs/training.md)")
    pack_tokens: int | None = option(None, "tokens per packed sequence [default: --max-length]", domain=COUNT)
    fsdp: bool = option(False, "shard weights, gradients and optimizer state over the processes (FSDP2, "
                               "torch fully_shard; under torchrun or accelerate launch, gloo or NCCL)")
    dtype: str = option("fp32", "precision of the stored weights: fp32 or bf16")
    mixed_precision: str = option("auto", "auto (bf16 autocast where the device computes bf16 natively), no, bf16")
    gradient_checkpointing: bool = option(True, "recompute activations in backward: ~10% slower, far less memory")
    freeze_embeddings: bool | None = option(None, "keep the input embeddings fixed [default: the method's choice]",
                                            flag="--freeze-embeddings/--train-embeddings")
    eval_every: int = option(0, "steps between evaluations; 0 = only before and after training", domain=COUNT_OR_ZERO)
    eval_max_pairs: int = option(200, "evaluate on at most N held-out records (seeded sample)", domain=COUNT)
    save_every: int = option(50, "steps between checkpoints", domain=COUNT)
    log_every: int = option(1, "steps between metric lines", domain=COUNT)
    seed: int = option(0, "seed for data order, initialisation and sampling", domain=SEED)
    resume: bool = option(False, "continue from the latest checkpoint in --output")
    trust_remote_code: bool = option(False, "run a hub model's own code (off: only transformers' code runs)")

    def __post_init__(self):
        problems = self.problems()
        if problems:
            raise ConfigError("invalid training options:\n  " + "\n  ".join(problems))

    def problems(self) -> list[str]:
        problems = domain_problems(self)
        if problems:
            return problems  # the relations below assume every number is in its domain
        if self.batch_tokens is not None and self.batch_tokens < self.max_length:
            problems.append(f"--batch-tokens {self.batch_tokens} must be at least --max-length {self.max_length}")
        if self.dtype not in ("fp32", "bf16"):
            problems.append(f"--dtype must be fp32 or bf16, got {self.dtype!r}")
        if self.mixed_precision not in ("auto", "no", "bf16"):
            problems.append(f"--mixed-precision must be auto, no or bf16, got {self.mixed_precision!r}")
        if self.lora and self.train_layers is not None:
            problems.append("--lora and --train-layers cannot be combined; choose one")
        if self.cache_frozen and self.train_layers is None:
            problems.append("--cache-frozen needs --train-layers N (only the top N blocks train)")
        if self.cache_frozen and self.freeze_embeddings is False:
            problems.append("--cache-frozen needs frozen input embeddings (the bottom blocks' output must not change)")
        unwritable = output_problem(self.output, "directory") if isinstance(self.output, str) else None
        if unwritable:
            problems.append(f"--output: {unwritable}")
        if isinstance(self.model, str) and isinstance(self.output, str) and _same_directory(self.model, self.output):
            problems.append(f"--output {self.output} is --model: training would overwrite the base model it starts "
                            "from; choose another --output")
        if self.packing not in PACKING_MODES:
            problems.append(f"--packing must be {', '.join(PACKING_MODES[:-1])} or {PACKING_MODES[-1]}, "
                            f"got {self.packing!r}")
        elif self.cache_frozen and self.packing in ("rows", "shared"):
            problems.append(f"--packing {self.packing} does not work with --cache-frozen: the cached states are per "
                            "padded row; use --packing off (or auto, which turns it off there)")
        if self.fsdp and self.cache_frozen:
            problems.append("--cache-frozen does not work with --fsdp: each process holds only a shard of the frozen "
                            "blocks' weights; use DDP (plain torchrun, no --fsdp) for it")
        return problems

    def precision(self) -> Precision:
        """What this run computes in (--dtype, --mixed-precision on the device it runs on): the
        frozen-state methods read states in it, and every trainer records it in rewardkit.json."""
        from rewardkit.models.loading import choose_device

        return training_precision(self.dtype, self.mixed_precision, choose_device())

    def to_dict(self) -> dict:
        """JSON-ready: in-memory data is described, not copied."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("data", "eval_data"):
                value = describe_source(value)
            out[f.name] = value
        return out


def describe_source(source: Any) -> Any:
    """File paths as strings; in-memory data as a short description."""
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        return str(source)
    if isinstance(source, (list, tuple)) and all(isinstance(s, str) or hasattr(s, "__fspath__") for s in source):
        return [str(s) for s in source]
    try:
        return f"<in-memory {type(source).__name__}: {len(source)} rows>"
    except TypeError:
        return f"<in-memory {type(source).__name__}>"

