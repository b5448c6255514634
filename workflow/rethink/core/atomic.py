"""Atomic file writes: a reader sees the old file or the complete new one, never half of
one. Torch-free, so the plotting environment can use it too."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


class DiskFull(OSError):
    """A write that ran out of space; the message names the file and the space it needs."""


def atomic_write(path: str | os.PathLike, write, size_hint: int | None = None) -> None:
    """Call write(tmp_path) on a temp file next to `path`, then rename it onto `path`.

    The temp name keeps the suffix, so writers that infer a format from it still work.
    A full disk (ENOSPC, however the writer reports it) raises DiskFull naming `path`, the
    space needed (`size_hint` bytes, when the caller knows) and the space free; the temp
    file is removed, so nothing half-written remains and a rerun starts clean.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise _disk_full(path, size_hint, 0) from e
        raise
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        written = os.path.getsize(tmp) if os.path.exists(tmp) else 0
        full = _out_of_space(e, path.parent, (size_hint or 0) - written)  # before the temp goes
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise _disk_full(path, size_hint, written) from e
        raise


def _out_of_space(e: BaseException, folder: Path, still_needed: int) -> bool:
    """ENOSPC, or a writer's failure (torch.save reports a full disk as a RuntimeError such
    as "unexpected pos 576 vs 534") while the device has no room left for the rest."""
    if isinstance(e, OSError):
        return e.errno in (errno.ENOSPC, errno.EDQUOT)
    if not isinstance(e, RuntimeError):
        return False
    free = _free_bytes(folder)
    return free is not None and free < max(still_needed, 1 << 20)


def _free_bytes(path) -> int | None:
    try:
        return shutil.disk_usage(path or ".").free
    except OSError:
        return None


def _disk_full(path: Path, size_hint: int | None, written: int) -> DiskFull:
    free = _free_bytes(path.parent)
    need = (f"needs about {_mb(size_hint)}" if size_hint
            else f"needs more than the {_mb(written)} written before the disk filled")
    return DiskFull(errno.ENOSPC,
                    f"no space left on the device of {path.parent} to write {path.name}: it {need}, "
                    f"{_mb(free) if free is not None else 'an unknown amount'} is free. Nothing "
                    "half-written was kept; free some space and rerun the same command to continue",
                    str(path))


@contextlib.contextmanager
def disk_full_exits():
    """Around a job's main(): a full disk ends it with the one-line message, not a traceback."""
    try:
        yield
    except DiskFull as e:
        raise SystemExit(f"error: {e.strerror}: {e.filename}") from None


def run_job(main) -> None:
    """A job's entry point: main() under disk_full_exits(), then, once it has returned, exit at once.

    Tearing down an interpreter that has imported torch takes about 1 s (finalising modules and
    objects) on which no output depends: every file a job writes is written atomically and
    closed before main() returns. So the process flushes stdout and stderr and leaves with
    os._exit. Errors take Python's normal path (their message or traceback, exit status 1)."""
    with disk_full_exits():
        code = main()
    if code is not None and not isinstance(code, int):
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def write_text(path: str | os.PathLike, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    atomic_write(path, write, size_hint=len(text.encode("utf-8")))


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=1) + "\n")


def sha1_file(path: str | os.PathLike) -> str:
    """SHA-1 of a file's bytes, read in blocks."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
