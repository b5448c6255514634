import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
sys.path.insert(0, str(ROOT / "tests"))

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SMOKE = ROOT / "tests" / "smoke_config.yaml"
FIGURE_FILES = [f"figures/{name}.{ext}" for name in ("ap_curves", "final_ap", "lead", "less_data", "norms",
                                                     "compute_seen", "pretrain_curve", "pretrain_strength", "models",
                                                     "keypoints", "datasets", "recipes")
                for ext in ("png", "pdf")]
FIGURE_FILES += [f"tables/{name}" for name in (
    "final_metrics.csv", "final_metrics.md", "final_metrics.tex", "claims.csv", "claims.md",
    "compute_seen.csv", "compute_seen.json", "world_stats.csv", "world_stats.md", "job_costs.csv", "job_costs.md", "keypoints.csv", "keypoints.md",
    "datasets.csv", "datasets.md", "recipes.csv", "recipes.md")]


def snakemake(*args, cwd=ROOT, check=True):
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_workflow(work: Path) -> Path:
    """The workflow's files in `work`, so a test can edit and run them without touching ours."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, work / name)
    for name in ("workflow", "envs", "profiles"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    return work


@pytest.fixture(scope="session")
def smoke(tmp_path_factory):
    """A copy of the workflow in a temp dir, after a complete run of the tiny config."""
    work = copy_workflow(tmp_path_factory.mktemp("smoke"))
    t0 = time.perf_counter()
    snakemake("--cores", "2", "--configfile", str(SMOKE), cwd=work)
    print(f"\nsmoke run: {time.perf_counter() - t0:.1f} s wall")
    return work


def pytest_collection_modifyitems(items):
    """Mark what runs Snakemake: everything under tests/workflow/, and any test of the smoke
    study (`make test-fast` leaves both out)."""
    for item in items:
        if Path(item.fspath).parent.name == "workflow" or "smoke" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.workflow)


def pytest_terminal_summary(terminalreporter):
    """The reliability suite's counts, as the reliability issue asks (when its files ran)."""
    names = ("test_backbones", "test_bad_input", "test_faults", "test_voc_data", "test_workflow")
    if not all(n in sys.modules for n in names):
        return
    test_backbones, test_bad_input, test_faults, test_voc_data, test_workflow = (sys.modules[n] for n in names)
    quirks, broken = len(test_bad_input.QUIRK_CASES), len(test_bad_input.BROKEN_CASES)
    configs, backbone = len(test_workflow.CONFIG_CASES), len(test_backbones.BACKBONE_CASES)
    voc = len(test_voc_data.BAD)
    terminalreporter.write_line(
        f"fault injection: {len(test_faults.KILL_POINTS)} SIGKILL points; bad and quirky input: "
        f"{quirks + broken + configs + backbone + voc} cases ({quirks} quirks, {broken} broken data, "
        f"{configs} config, {backbone} backbone files, {voc} broken VOCdevkit)")
