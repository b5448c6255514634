"""Process setup shared by the training and evaluation entry points."""
from __future__ import annotations

import gc
import os
import time

import torch

from rethink.core import driver


def cuda_report() -> str:
    """What this process finds of CUDA: the wheel's CUDA, the driver, the visible devices."""
    try:
        with open("/proc/driver/nvidia/version") as f:
            driver_line = f.readline().strip()
    except OSError:
        driver_line = "none found (/proc/driver/nvidia/version missing)"
    return (f"torch {torch.__version__} built for CUDA {torch.version.cuda}; NVIDIA driver: "
            f"{driver_line}; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}; "
            f"torch.cuda.is_available() is {torch.cuda.is_available()}")


def resolve_device(device: str, gpus: int = 0, resource_key: str = "resources.*.gpu") -> torch.device:
    """The job's device: `device` (config key `device`: auto, cpu, cuda), checked against
    the GPUs the job was given (`gpus`, its `resource_key`). Asking for CUDA, or being given
    GPUs, without a working CUDA stops here, naming the key and what was found, rather than
    training on CPU (a CUDA 13 wheel on an older driver reports no GPU at all)."""
    if device == "cpu" and gpus > 0:
        raise SystemExit(f"{resource_key} = {gpus} but config key `device` is cpu: give the job "
                         f"no GPU, or set device: auto or cuda")
    if (device.startswith("cuda") or gpus > 0) and not torch.cuda.is_available():
        asked = f"config key `device` is {device}" if device.startswith("cuda") else \
            f"{resource_key} = {gpus} (device: {device})"
        raise SystemExit(f"{asked}, but CUDA does not work here: {cuda_report()}. Fix the driver "
                         f"or the CUDA_VISIBLE_DEVICES, or run on CPU (device: cpu, gpu: 0).")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def setup(threads: int, device: str = "auto", deterministic: bool = True, gpus: int = 0,
          resource_key: str = "resources.*.gpu") -> torch.device:
    """Threads from the rule's `threads` (so parallel jobs don't oversubscribe cores), shared
    by the processes torchrun starts on this node (LOCAL_WORLD_SIZE), device
    (`resolve_device`), and deterministic kernels on CPU (bitwise-reproducible resume and
    forks). A job started by a local Snakemake driver stops when that driver dies
    (`driver.watch_driver`)."""
    driver.watch_driver()
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    torch.set_num_threads(max(1, int(threads) // ranks))
    dev = resolve_device(device, gpus, resource_key)
    if deterministic and dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
        # Deterministic mode also NaN-fills every new uninitialised tensor (a debugging aid
        # against reads of uninitialised memory): ~1,900 fills per training step, same result.
        torch.utils.deterministic.fill_uninitialized_memory = False
    return dev


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), e.g. the start-up time before main()."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def freeze_before_fork(workers: int) -> None:
    """Before data loader workers fork: move every object alive now (model, dataset index,
    imports) out of the garbage collector's reach, so that a worker's collections do not write
    their headers and copy their pages (`make bench`'s loader memory, arrays_frozen arm).
    Later garbage is collected as usual. Nothing to do without workers."""
    if workers:
        gc.collect()
        gc.freeze()


class Progress:
    """Prints one progress line every `every` steps: rate and time left."""

    def __init__(self, total: int, every: int, unit: str = "it"):
        self.total, self.every, self.unit = total, max(1, every), unit
        self.t0 = time.perf_counter()
        self.done = 0

    def step(self, n: int = 1) -> str | None:
        before, self.done = self.done, self.done + n
        if self.done // self.every == before // self.every and self.done != self.total:
            return None
        elapsed = time.perf_counter() - self.t0
        rate = self.done / elapsed if elapsed > 0 else float("inf")
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        return f"{self.done}/{self.total} {rate:.2f} {self.unit}/s, {left:.0f}s left"
