"""Process setup shared by the training and evaluation entry points."""
from __future__ import annotations

import json
import os
import time

import torch

from . import driver


def setup(threads: int, device: str = "auto", deterministic: bool = True) -> torch.device:
    """Threads from the rule's `threads` (so parallel jobs don't oversubscribe cores), device,
    and deterministic kernels on CPU (bitwise-reproducible resume and forks). A job started
    by a local Snakemake driver stops when that driver dies (`driver.watch_driver`)."""
    driver.watch_driver()
    torch.set_num_threads(max(1, int(threads)))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
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


def json_arg(text: str, name: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--{name}: not valid JSON ({e})")
    if not isinstance(value, dict):
        raise SystemExit(f"--{name}: expected a JSON object")
    return value


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
