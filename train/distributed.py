"""Multi-process training through torchrun (DDP): NCCL on GPUs, gloo on CPUs.

    torchrun --nproc_per_node=8 -m styleengine train STYLE.jpg DATA/ -o vangogh.pt [train options]
    torchrun --nproc_per_node=2 -m styleengine train ...   # 2 CPU processes, gloo

`--batch-size` is per process; the global batch is batch_size * world_size and the data order depends only on
(seed, step, global batch), so resuming with the same world size continues exactly. Rank 0 alone writes the
log, previews, checkpoints and the final model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment; a no-op for single-process runs."""
    if not launched_by_torchrun():
        return DistInfo()
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), backend)


def local_device(requested: str) -> torch.device:
    """The device for this process: under torchrun with CUDA, one GPU per local rank."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(requested)
    if dev.type == "cuda" and dev.index is None and launched_by_torchrun():
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


def wrap(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    # DDP broadcasts rank 0's parameters at construction, so all ranks start identical.
    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean_across(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Average a small tensor of metrics over processes (for logging only)."""
    if not info.enabled:
        return values
    import torch.distributed as dist

    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / info.world_size


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
