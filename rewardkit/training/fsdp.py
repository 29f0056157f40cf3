"""FSDP2 (`torch.distributed.fsdp.fully_shard`) for the training loop: `--fsdp`.

Each decoder block and then the loop's whole model become FSDP units, so every process holds a
shard of the weights, gradients and optimizer state and gathers a block's weights only while
it runs. It runs wherever torch.distributed does — gloo on CPUs, NCCL on GPUs — under
`torchrun` or `accelerate launch`; the loop, its data order and its accumulation are the same
as in one process, so N processes with the same global batch end at the same weights.

Checkpoints under FSDP are sharded (`torch.distributed.checkpoint`, training/sharded_checkpoint.py);
the final model is gathered into one ordinary Hugging Face directory that one process loads.
"""

from __future__ import annotations

import torch

from rewardkit.errors import ConfigError


def decoder_blocks(model) -> torch.nn.ModuleList:
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            return module
    raise ConfigError("--fsdp: could not find the model's transformer blocks to shard")


def shard(root, device: torch.device) -> None:
    """fully_shard every decoder block, then `root` (the loop's TaskModule), in place. The root
    unit holds everything outside the blocks — embeddings, final norm, the value head or the LM
    head — and gathers it for the whole of its forward: the methods read head rows directly
    (two verdict tokens, one value row), which only works while those weights are gathered."""
    from torch.distributed.fsdp import fully_shard

    root.to(device)
    for block in decoder_blocks(root):
        fully_shard(block)
    fully_shard(root)


def full_state_dict(module) -> dict[str, torch.Tensor]:
    """The whole model's weights, gathered to CPU (every process must call it; all get them).
    A tied weight (the LM head sharing the input embeddings) is kept once, under its first
    name, as an unsharded model's save_pretrained keeps it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    first: dict[int, str] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        if first.setdefault(id(parameter), name) != name:
            state.pop(name, None)
    return state


def unsharded_copy(task, state: dict[str, torch.Tensor]):
    """A whole, unsharded copy of the task's model (base and adapters) holding `state`, the
    gathered weights — on one process, for what needs every weight at once (merging LoRA
    adapters into the base). Only weights tied to a loaded one may be absent from `state`."""
    copy, _ = task.load_model()
    missing, unexpected = copy.load_state_dict(state, strict=False)
    loaded = {id(p) for name, p in copy.named_parameters(remove_duplicate=False) if name in state}
    untied = [name for name, p in copy.named_parameters(remove_duplicate=False) if name in missing and id(p) not in loaded]
    if unexpected or untied:
        raise RuntimeError(f"the gathered weights do not fit the model: unexpected {unexpected[:3]}, missing {untied[:3]}")
    return copy


def mixed_precision_forward(module, device: torch.device) -> None:
    """What accelerate does to a model it prepares for bf16, done to one it does not prepare
    (an FSDP model is sharded here, not by accelerate): the forward runs under bf16 autocast
    and returns fp32 outputs — the same computation as every other run, and as the reload."""
    from types import MethodType

    from accelerate.utils.operations import convert_outputs_to_fp32

    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    module.forward = MethodType(convert_outputs_to_fp32(autocast(type(module).forward)), module)


def is_sharded(module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in module.modules())


def unsharded_class_name(module) -> str:
    """fully_shard swaps a module's class for `FSDP<Class>`; saved configs must name `<Class>`."""
    name = type(module).__name__
    return name[len("FSDP"):] if name.startswith("FSDP") and is_sharded(module) else name
