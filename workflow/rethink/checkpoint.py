"""Atomic checkpoint writing and checked loading."""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write


def save(state: dict, path: str | Path) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load(path: str | Path, required: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint with weights_only=True and check it has the expected entries."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or corrupt files fail in many ways
        raise RuntimeError(f"checkpoint {path} is corrupt or truncated: {e}") from e
    missing = [k for k in required if k not in state]
    if missing:
        raise RuntimeError(f"checkpoint {path} lacks {missing}")
    return state
