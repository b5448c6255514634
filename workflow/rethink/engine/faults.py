"""Fault injection for the reliability tests: a training process kills itself with SIGKILL
at a named point when RETHINK_FAULT asks for it, e.g.

    RETHINK_FAULT=iter:7    before the update of iteration 7
    RETHINK_FAULT=save:8    while writing the checkpoint of iteration 8 (half the file written)

Unset (always, outside tests), these calls do nothing.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "RETHINK_FAULT"


def _requested(point: str, iteration: int) -> bool:
    return os.environ.get(ENV, "") == f"{point}:{iteration}"


def kill_if(point: str, iteration: int) -> None:
    if _requested(point, iteration):
        print(f"{ENV}: SIGKILL at {point}:{iteration}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def kill_mid_write_if(tmp: str | Path, iteration: int) -> None:
    """Leave the temp file half-written, then SIGKILL: a kill in the middle of a write."""
    if _requested("save", iteration):
        size = Path(tmp).stat().st_size
        with open(tmp, "r+b") as f:
            f.truncate(size // 2)
        kill_if("save", iteration)
