"""Atomic checkpoint writing and checked loading."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch


def atomic_write(path: str | Path, write) -> None:
    """Call write(tmp_path), then rename onto `path`: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(obj, path: str | Path) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
    atomic_write(path, write)


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
