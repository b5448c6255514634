# Paths, the training plan and small helpers shared by the rule files.
import json
import shlex
import shutil

from snakemake.exceptions import WorkflowError

from rethink import config as study_config
from rethink.schedule import TRUNK

# --use-conda without conda: say how to run without it, before Snakemake fails obscurely.
_deployment = getattr(workflow, "deployment_settings", None)
if (_deployment is not None and "CONDA" in {m.name for m in _deployment.deployment_method}
        and not (shutil.which("conda") or shutil.which("mamba"))):
    raise WorkflowError(
        "--use-conda was given but neither conda nor mamba is on PATH. Either install conda, "
        "or run without --use-conda from the pip environment: `make setup` creates .venv with "
        "the same pinned versions as envs/*.yaml, then `. .venv/bin/activate && snakemake --cores all`.")

try:
    study_config.check(config)
except study_config.ConfigError as e:
    raise WorkflowError(f"config: {e}")

R = config["results"].rstrip("/")
PLAN = study_config.detection_plan(config)
INITS = config["detection"]["inits"]
BRANCHES = [TRUNK] + [s.name for s in PLAN.schedules]

SYNTHETIC_IMAGENET = f"{R}/data/imagenet"
SYNTHETIC_COCO = f"{R}/data/coco"
IMAGENET = config["data"]["imagenet"] or SYNTHETIC_IMAGENET
COCO = config["data"]["coco"] or SYNTHETIC_COCO
COCO_CHECKED = f"{R}/checks/coco_layout.json"
IMAGENET_CHECKED = f"{R}/checks/imagenet_layout.json"
BACKBONE = config["pretrain"]["checkpoint"] or f"{R}/pretrain/backbone.pt"
PRETRAIN_METRICS = f"{R}/pretrain/metrics.json"
RUNS_PRETRAINING = "pretrained" in INITS and not config["pretrain"]["checkpoint"]

CKPT = f"{R}/detection/{{init}}/{{branch}}/iter_{{iteration}}.pt"
EVAL_DIR = f"{R}/eval/{{init}}/{{branch}}/iter_{{iteration}}"


wildcard_constraints:
    init="scratch|pretrained",
    branch=r"trunk|[0-9.]+x",
    iteration=r"\d{6}",


def as_json(obj):
    """Compact, key-order-stable JSON for passing a config section on the command line."""
    return json.dumps(obj, separators=(",", ":"))


def ckpt_path(init, branch, iteration):
    return CKPT.format(init=init, branch=branch, iteration=f"{iteration:06d}")


def eval_path(init, branch, iteration, name="metrics.json"):
    folder = EVAL_DIR.format(init=init, branch=branch, iteration=f"{iteration:06d}")
    return f"{folder}/{name}"


def all_checkpoints():
    return [(init, branch, it) for init in INITS for branch in BRANCHES for it in PLAN.checkpoints(branch)]


def benchmark_files():
    """The benchmark files of every pre-training, training and evaluation job."""
    files = [f"{R}/benchmarks/pretrain/pretrain.tsv"] if RUNS_PRETRAINING else []
    for init, branch, it in all_checkpoints():
        for stage in ("train", "evaluate"):
            files.append(f"{R}/benchmarks/{stage}/{init}/{branch}/iter_{it:06d}.tsv")
    return files


def train_launcher():
    """One process, or with several GPUs per job, torchrun with one process per GPU."""
    gpus = config["resources"]["train"]["gpu"]
    if gpus > 1:
        return f"python -m torch.distributed.run --standalone --nproc-per-node {gpus} -m rethink.train"
    return "python -m rethink.train"


def threads_for(kind):
    return config["threads"][kind]


def resources_for(kind):
    res = config["resources"][kind]
    return {"mem_mb": res["mem_mb"], "runtime": res["runtime"], "gpu": res["gpu"]}


# Training segments of the forked plan (rule train_segment).

def segment(wildcards):
    """(start branch, start iteration, end iteration, schedule length or 0) of a segment."""
    end = int(wildcards.iteration)
    from_branch, start = PLAN.segment_start(wildcards.branch, end)
    total = 0 if wildcards.branch == TRUNK else PLAN.schedule(wildcards.branch).iters
    return from_branch, start, end, total


def segment_inputs(wildcards):
    from_branch, start, _, _ = segment(wildcards)
    inputs = {"checked": COCO_CHECKED}
    if start > 0:
        inputs["resume"] = ckpt_path(wildcards.init, from_branch, start)
    elif wildcards.init == "pretrained":
        inputs["backbone"] = BACKBONE
    return inputs


def segment_args(wildcards, input):
    _, start, end, total = segment(wildcards)
    args = f"--start-iter {start} --end-iter {end} --schedule-iters {total}"
    if "resume" in input.keys():
        args += f" --resume {shlex.quote(input.resume)}"
    if "backbone" in input.keys():
        args += f" --backbone {shlex.quote(input.backbone)}"
    return args


def figure_params():
    return {k: config["figures"][k] for k in ("dpi", "style", "context", "palette")}


def data_root(configured, synthetic):
    """The dataset folder a job reads: the configured real one, or the synthetic one."""
    return lambda wildcards: configured or synthetic
