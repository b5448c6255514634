"""Timing, fitting and subprocess helpers shared by the benchmark parts."""
from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]  # the repository: Snakefile, config.yaml, workflow/


def load_config(path: str | Path | None = None) -> dict:
    return yaml.safe_load(Path(path or ROOT / "config.yaml").read_text())


def median(values) -> float:
    return float(statistics.median(values))


def rnd(x: float | None, digits: int = 4):
    return None if x is None else round(float(x), digits)


def fit_line(xs, ys) -> dict:
    """Least-squares y = intercept + slope * x, with R^2."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    intercept = my - slope * mx
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    r2 = 1.0 - ss_res / ss_tot if ss_tot else 1.0
    return {"intercept": rnd(intercept, 3), "slope": rnd(slope, 3), "r2": rnd(r2, 3)}


class StampedLines(io.TextIOBase):
    """A stdout replacement that records (perf_counter time, line) for every line written."""

    def __init__(self):
        self.lines: list[tuple[float, str]] = []
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        now = time.perf_counter()
        self._partial += text
        *done, self._partial = self._partial.split("\n")
        self.lines += [(now, line) for line in done]
        return len(text)


def job_env() -> dict:
    """Environment for subprocesses: our package importable, this interpreter's bin first on
    PATH (Snakemake jobs call `python -m rethink...`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "workflow"), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_timed(cmd: list[str], cwd: str | Path, check: bool = True, timeout: float = 1800):
    """Run a command; (wall seconds, CompletedProcess). Raises with its output on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=job_env(), capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.perf_counter() - t0
    if check and proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}) in {cwd}:\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc


def snakemake_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args]


def shown(cmd: list[str]) -> str:
    """A command as a person would type it (python -m snakemake -> snakemake)."""
    if cmd[:3] == [sys.executable, "-m", "snakemake"]:
        cmd = ["snakemake", *cmd[3:]]
    elif cmd and cmd[0] == sys.executable:
        cmd = ["python", *cmd[1:]]
    return shlex.join(str(c) for c in cmd)


def job_counts(output: str) -> dict:
    """Snakemake's 'Job stats' table (rule -> count, and 'total'), from a run or dry run."""
    counts = {}
    block = output.split("Job stats:", 1)
    if len(block) < 2:
        return counts
    for line in block[1].splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)\s*$", line)
        if not m:
            if counts:
                break
            continue
        counts[m[1]] = int(m[2])
        if m[1] == "total":
            break
    return counts


def copy_workflow(dst: Path) -> Path:
    """The workflow's files (Snakefile, config.yaml, workflow/, envs/) in `dst`."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, dst / name)
    for name in ("workflow", "envs"):
        shutil.copytree(ROOT / name, dst / name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
