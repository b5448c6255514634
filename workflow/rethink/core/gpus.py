"""Give a local job its own GPUs: claim N free ones through lock files, set
CUDA_VISIBLE_DEVICES, run the command, release them when it exits.

    python -m rethink.core.gpus --count 2 -- python -m rethink.engine.train ...

Snakemake limits how many GPUs run at once (the `gpu` resource) but does not say which, so
concurrent jobs would all use GPU 0. Under SLURM, or when CUDA_VISIBLE_DEVICES is already set,
or for --count 0, the command runs unchanged.
"""
from __future__ import annotations

import argparse
import fcntl
import glob
import os
import subprocess
import sys
import time

LOCK_DIR = os.environ.get("RETHINK_GPU_LOCKS", "/tmp/rethink-gpu-locks")


def visible_gpus() -> int:
    """GPUs on this machine, from the NVIDIA driver (no CUDA initialisation)."""
    return len(glob.glob("/proc/driver/nvidia/gpus/*"))


def claim(count: int, total: int, wait_s: float = 3600.0) -> tuple[list[int], list]:
    """Lock `count` of GPUs 0..total-1; wait for them to free up, up to wait_s."""
    if count > total:
        raise SystemExit(f"job asks for {count} GPUs but this machine has {total}")
    os.makedirs(LOCK_DIR, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        held = []
        for i in range(total):
            f = open(os.path.join(LOCK_DIR, f"gpu{i}.lock"), "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            held.append((i, f))
            if len(held) == count:
                return [i for i, _ in held], [f for _, f in held]
        for _, f in held:
            f.close()
        if time.monotonic() > deadline:
            raise SystemExit(f"no {count} free GPUs within {wait_s:.0f} s (locks in {LOCK_DIR})")
        time.sleep(1.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, required=True, help="GPUs the job needs")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given")
    if args.count <= 0 or "CUDA_VISIBLE_DEVICES" in os.environ or "SLURM_JOB_ID" in os.environ:
        os.execvp(command[0], command)
    ids, locks = claim(args.count, visible_gpus())
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, ids))}
    print(f"rethink.core.gpus: CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}", file=sys.stderr, flush=True)
    return subprocess.run(command, env=env).returncode  # locks are held until the job ends


if __name__ == "__main__":
    sys.exit(main())
