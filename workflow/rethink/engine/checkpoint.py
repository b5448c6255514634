"""Atomic checkpoint writing and checked loading."""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from rethink.core.atomic import atomic_write
from rethink.engine import faults


def save(state: dict, path: str | Path) -> None:
    def write(tmp):
        torch.save(state, tmp)
        faults.kill_mid_write_if(tmp, state.get("iteration", -1))
    atomic_write(path, write, size_hint=tensor_bytes(state))


def tensor_bytes(obj) -> int:
    """Bytes of the tensors in a (nested) state: about what torch.save writes."""
    if isinstance(obj, torch.Tensor):
        return obj.untyped_storage().nbytes()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete temp files a killed writer of `path` left behind; return what was removed."""
    path = Path(path)
    stale = list(path.parent.glob(f".{path.name}.*.tmp*")) if path.parent.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def load(path: str | Path, required: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint with weights_only=True and check it has the expected entries."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise RuntimeError(f"checkpoint {path} holds objects other than tensors and plain data: "
                               f"not loaded (checkpoints are read with weights_only=True)") from e
        raise RuntimeError(f"checkpoint {path} is corrupt or truncated: {e}") from e
    except Exception as e:  # truncated or corrupt files fail in many ways
        raise RuntimeError(f"checkpoint {path} is corrupt or truncated: {e}") from e
    missing = [k for k in required if k not in state]
    if missing:
        raise RuntimeError(f"checkpoint {path} lacks {missing}")
    return state


def peek(path: str | Path) -> dict:
    """A checkpoint's iteration and meta without reading its tensors (memory-mapped)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:
        raise RuntimeError(f"checkpoint {path} is corrupt or truncated: {e}") from e
    return {**state.get("meta", {}), "iteration": state.get("iteration"),
            "has_optimizer": "optimizer" in state}
