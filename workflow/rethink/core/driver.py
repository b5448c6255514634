"""A killed run resumes with the same command: one live Snakemake driver per working folder,
stale locks of dead drivers cleared, and jobs that stop when their driver dies.

Snakemake's own lock (`.snakemake/locks/`) is a set of plain files: a driver that is
SIGKILLed leaves them behind, and the next run refuses to start until `snakemake --unlock`.
Here every driver also holds an exclusive `flock` on `.snakemake/rethink-driver.lock` for its
whole life. The kernel drops that lock the moment the process dies, however it dies, so:
  - a driver that gets the flock knows no other driver of this Snakefile is alive in the
    folder, and any Snakemake lock files it finds are stale: it removes them;
  - a driver that does not get it leaves everything alone, and Snakemake's own lock refuses
    it as before (a live second driver is still refused).
Jobs run by a local driver watch it (`watch_driver`): when it dies they exit within a second
instead of training on as orphans beside the next run's copy of the same job.
Also the jobs' interpreter: `python` in a job is the one running Snakemake.
Torch-free: the Snakefile imports it.
"""
from __future__ import annotations

import fcntl
import os
import select
import socket
import sys
import threading
from pathlib import Path

LOCK_NAME = "rethink-driver.lock"
DRIVER_ENV = "RETHINK_DRIVER"  # "host:pid" of the driver, inherited by its local jobs
ORPHAN_EXIT = 75  # EX_TEMPFAIL: the job did not fail, its driver went away

_held = None  # the open lock file, kept for the life of the driver


def claim_folder(state_dir: str | os.PathLike = ".snakemake", log=None) -> bool:
    """Take the driver lock of `state_dir`; when taken, clear stale Snakemake locks.

    Returns whether this process holds the lock. Never raises for a busy or unsupported
    lock: Snakemake's own locking then decides, as it would without this module.
    """
    global _held
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    state = Path(state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
        f = open(state / LOCK_NAME, "a+")
    except OSError:
        return False
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another live driver holds it (or the filesystem has no flock)
        f.close()
        return False
    f.seek(0)
    previous = f.read().strip()
    me = f"{socket.gethostname()}:{os.getpid()}"
    f.seek(0)
    f.truncate()
    f.write(me + "\n")
    f.flush()
    _held = f
    os.environ[DRIVER_ENV] = me
    stale = sorted(p for p in (state / "locks").glob("*.lock") if p.is_file())
    if stale:
        for p in stale:
            p.unlink(missing_ok=True)
        log(f"Removed {len(stale)} stale Snakemake lock file(s) in {state / 'locks'}: the driver "
            f"that wrote them ({previous or 'unknown'}) is no longer running.")
    return True


def jobs_use_this_interpreter() -> None:
    """Put this interpreter's folder first on PATH (jobs inherit it), so a job's `python`
    is the one running Snakemake even when nobody activated its environment."""
    folder = os.path.dirname(sys.executable)
    os.environ["PATH"] = os.pathsep.join(p for p in (folder, os.environ.get("PATH")) if p)


def watch_driver(environ=os.environ) -> bool:
    """In a job: exit (status ORPHAN_EXIT) as soon as the local driver that started it dies.

    Only for jobs on the driver's own machine outside a batch system (a SLURM job outlives
    its submitter by design). Returns whether a watch was started.
    """
    spec = environ.get(DRIVER_ENV, "")
    host, _, pid = spec.rpartition(":")
    if not pid.isdigit() or host != socket.gethostname() or "SLURM_JOB_ID" in environ:
        return False
    pid = int(pid)
    if pid == os.getpid():
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        _orphaned(pid)
    except (OSError, AttributeError):  # no pidfd (old kernel): no watch
        return False

    def wait():
        select.select([pidfd], [], [])
        _orphaned(pid)

    threading.Thread(target=wait, name="watch-driver", daemon=True).start()
    return True


def _orphaned(pid: int):
    print(f"The Snakemake driver (pid {pid}) that started this job is gone: stopping the job "
          "(rerun the same snakemake command to continue the study).", file=sys.stderr, flush=True)
    os._exit(ORPHAN_EXIT)
