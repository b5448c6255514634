"""Multi-process training under torchrun: one process per GPU (NCCL), or per CPU process
for tests (gloo). Without torchrun's environment everything degrades to one process."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# Rank 0 writes each checkpoint while the others wait in the next collective (several
# training processes leave scoring to the evaluate jobs): a slow shared file system's write.
COLLECTIVE_TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list) -> list:
        """This rank's contiguous share of a global batch (sizes must divide)."""
        if len(items) % self.size:
            raise SystemExit(f"batch size {len(items)} (detection.batch_size or pretrain.batch_size) "
                             f"is not divisible by the {self.size} training processes")
        per = len(items) // self.size
        return items[self.rank * per:(self.rank + 1) * per]

    def all_sum(self, value: float) -> float:
        if self.size == 1:
            return value
        # NCCL reduces GPU tensors only, gloo CPU ones.
        device = torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t)
        return float(t.item())

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


def init(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group torchrun set up (if any); pick this rank's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), device
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device, timeout=COLLECTIVE_TIMEOUT)
    else:
        dist.init_process_group("gloo", timeout=COLLECTIVE_TIMEOUT)
    return world, device


def shutdown(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
