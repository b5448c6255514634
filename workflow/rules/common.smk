# Paths, the training plan and small helpers shared by the rule files.
import json
import re
import shlex
import shutil
import sys
import typing

from snakemake.exceptions import WorkflowError

from rethink.core import config as study_config
from rethink.core import conventions, names
from rethink.core.kinds import on_subset
from rethink.core.schedule import TRUNK

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

if workflow.is_main_process and (config["data"]["coco"] or config["data"]["imagenet"]):
    from rethink.core import cost_plan  # real data: say what the run will cost before it starts

    print(cost_plan.summary(cost_plan.estimate(config)), file=sys.stderr)

R = config["results"].rstrip("/")
VARIANTS = study_config.variants(config)
SEEDS = study_config.seeds(config)
INITS = config["detection"]["inits"]

SYNTHETIC_IMAGENET = f"{R}/data/imagenet"
SYNTHETIC_COCO = f"{R}/data/coco"
IMAGENET = config["data"]["imagenet"] or SYNTHETIC_IMAGENET
COCO = config["data"]["coco"] or SYNTHETIC_COCO
COCO_CHECKED = f"{R}/checks/coco_layout.json"
IMAGENET_CHECKED = f"{R}/checks/imagenet_layout.json"
STUDY = f"{R}/detection/study.json"
SUBSET = f"{R}/data/subsets/{{variant}}/instances_train2017.json"
# Task variants (study.tasks, keypoints) train on the task's annotation files of the same images:
# real data's annotations/person_keypoints_{train,val}2017.json, or the synthetic world's
TASK_VARIANTS = [v for v in VARIANTS if VARIANTS[v].task]
SYNTHETIC_KEYPOINTS = f"{R}/data/keypoints"
KEYPOINTS_DIR = f"{config['data']['coco']}/annotations" if config["data"]["coco"] else SYNTHETIC_KEYPOINTS
KEYPOINTS_CHECKED = f"{R}/checks/keypoints_layout.json"


def task_annotations(variant, split):
    """A task variant's annotation file of `split` (train, val)."""
    return f"{KEYPOINTS_DIR}/{names.KEYPOINT_FILE.format(split=split)}"


# Dataset variants (study.datasets, voc) train and are scored on another dataset: data.voc's
# VOCdevkit (or the synthetic world's VOC-layout scenes), whose image sets the workflow checks
# and converts to COCO-format files once (rethink.data.voc); their images stay where they are.
DATASET_VARIANTS = [v for v in VARIANTS if VARIANTS[v].dataset]
SYNTHETIC_VOC = f"{R}/data/VOCdevkit"
VOC = config["data"]["voc"] or SYNTHETIC_VOC
VOC_CONVERTED = f"{R}/data/voc/instances_{{split}}.json"
VOC_CHECKED = f"{R}/checks/voc_layout.json"


def voc_class_args():
    """--classes of the conversion: data.voc_class_names, the synthetic world's categories, or
    none (VOC's 20)."""
    if config["data"]["voc"]:
        names = config["data"]["voc_class_names"]
    else:
        from rethink.core import synthetic
        names = synthetic.voc_categories(config["data"]["synthetic"])
    return "--classes " + " ".join(shlex.quote(n) for n in names) if names else ""


def variant_root(variant):
    """The data folder a variant's jobs read images from: main's COCO, or a dataset variant's."""
    return VOC if VARIANTS[variant].dataset else COCO


def variant_checked(variant):
    """The layout check a variant's jobs depend on (and read skipped images from)."""
    return VOC_CHECKED if VARIANTS[variant].dataset else COCO_CHECKED


def variant_val_annotations(variant):
    """The val annotation file a variant is scored on, or None for main's instances_val2017.json."""
    v = VARIANTS[variant]
    if v.task:
        return task_annotations(variant, "val")
    return VOC_CONVERTED.format(split="val") if v.dataset else None

# One pre-training per norm the pretrained branches need (SyncBN/FrozenBN start from BN);
# pretrain.checkpoint, when given, replaces the one of model.norm.
PRETRAIN_NORMS = sorted({study_config.pretrain_norm(v.norm) for v in VARIANTS.values() if not v.own_pretraining})
MAIN_PRETRAIN_NORM = study_config.pretrain_norm(config["model"]["norm"])
PRETRAINED = "pretrained" in INITS


GIVEN_BACKBONE = config["pretrain"]["checkpoint"]
IMPORTED_BACKBONE = f"{R}/pretrain/given/backbone.pt"  # pretrain.checkpoint, checked and converted


def uses_given_backbone(norm):
    return bool(GIVEN_BACKBONE) and study_config.pretrain_norm(norm) == MAIN_PRETRAIN_NORM


def backbone_path(norm):
    if uses_given_backbone(norm):
        return IMPORTED_BACKBONE
    return f"{R}/pretrain/{study_config.pretrain_norm(norm)}/backbone.pt"


def pretrain_metrics(norm):
    """The metrics file of the pre-training `norm`'s backbone comes from; None if given."""
    return None if uses_given_backbone(norm) else f"{R}/pretrain/{study_config.pretrain_norm(norm)}/metrics.json"


# Pretraining variants (study.pretrainings) pre-train main's norm again with their own
# pretrain.* keys, model variants (study.models) pre-train their own backbone
# with main's: each into pretrain/NORM_NAME/, one pre-training per key of PRETRAININGS.
PRETRAINING_VARIANTS = [v for v in VARIANTS if VARIANTS[v].shares_scratch]
OWN_PRETRAINING_VARIANTS = [v for v in VARIANTS if VARIANTS[v].own_pretraining] if PRETRAINED else []
if workflow.is_main_process and config["study"].get("pretrainings") and not PRETRAINING_VARIANTS:
    print("note: study.pretrainings left out: they vary this pipeline's own pre-training, and this "
          "study " + ("starts from pretrain.checkpoint" if GIVEN_BACKBONE else "has no scratch-vs-pretrained "
          "comparison (detection.inits)"), file=sys.stderr)
if workflow.is_main_process and config["study"].get("models") and not study_config.models_run(config):
    print("note: study.models left out: pretrain.checkpoint is a backbone of model.*'s shape, so a "
          "model of another backbone has none to start from", file=sys.stderr)
PRETRAININGS = sorted({n for n in PRETRAIN_NORMS if pretrain_metrics(n)} |
                      {study_config.pretraining_key(VARIANTS[v]) for v in OWN_PRETRAINING_VARIANTS})


def pretraining_file(key, name):
    """A file (backbone.pt, metrics.json) of the pre-training `key` (GN, BN, GN_<variant>)."""
    return f"{R}/pretrain/{key}/{name}"


def variant_backbone(variant):
    """The backbone `variant`'s pretrained branch starts from."""
    v = VARIANTS[variant]
    return pretraining_file(study_config.pretraining_key(v), "backbone.pt") if v.own_pretraining else backbone_path(v.norm)


def variant_pretrain_metrics(variant):
    return pretraining_file(study_config.pretraining_key(VARIANTS[variant]), "metrics.json")


try:  # the given backbone's input conventions follow from its format: known before any job runs
    GIVEN_INPUT = conventions.declared_input(GIVEN_BACKBONE, config["pretrain"]["input"]) if GIVEN_BACKBONE else None
except conventions.BackboneError as e:
    raise WorkflowError(str(e))


# Settings a training job reads that must not be its rerun triggers. training_eval: how a
# training job scores its checkpoints (evaluation keys are rerun triggers of the evaluate rule
# alone; every metrics file records the settings used). given_backbone: a scratch branch does
# not read the given backbone, so a new one leaves scratch as it is, but its first job checks
# the file as import_backbone does, so that no training starts on a bad one. The train rule
# passes them as params whose function takes `input`: Snakemake counts such a param as derived
# from the inputs and leaves it out of the params rerun trigger (an ancient() settings file
# would not do: a job that rewrites it masks the train jobs' own triggers in Snakemake's DAG).
JOB_SETTINGS = {"training_eval": study_config.training_eval_settings(config),
                "given_backbone": study_config.given_backbone_settings(config)}


def job_settings(name):
    """A param of training outside its rerun triggers: JOB_SETTINGS[name] as JSON."""
    def settings(wildcards, input):
        return as_json(JOB_SETTINGS[name])
    return settings


def input_conventions(norm):
    """How `norm`'s detectors normalise their input, scratch and pre-trained alike: as the
    backbone of its pretrained branch was trained (ours: ImageNet RGB in [0, 1])."""
    return GIVEN_INPUT if uses_given_backbone(norm) else dict(conventions.IMAGENET_RGB)


RUNS_PRETRAINING = PRETRAINED and any(pretrain_metrics(n) for n in PRETRAIN_NORMS)
PRETRAIN_METRICS = pretrain_metrics(config["model"]["norm"]) if PRETRAINED else None

CELL = "{variant}/seed{seed}/{init}/{branch}/iter_{iteration}"
CKPT = f"{R}/detection/{CELL}.pt"
EVAL_DIR = f"{R}/eval/{CELL}"


wildcard_constraints:
    variant=r"[A-Za-z0-9_.]+",
    seed=r"\d+",
    init="scratch|pretrained",
    branch=r"trunk|[0-9.]+x",
    iteration=r"\d{6}",
    norm="GN|BN|SyncBN|FrozenBN|none",
    pretraining=r"(GN|BN|none)(_[A-Za-z0-9_.]+)?",


def as_json(obj):
    """Compact, key-order-stable JSON for passing a config section on the command line."""
    return json.dumps(obj, separators=(",", ":"))


def cell_path(pattern, variant, seed, init, branch, iteration):
    return pattern.format(variant=variant, seed=seed, init=init, branch=branch,
                          iteration=f"{iteration:06d}")


def branches(variant):
    return [TRUNK] + [s.name for s in VARIANTS[variant].plan.schedules]


def trains(variant, init):
    """Whether `variant` trains its own `init` runs (a pretraining variant's scratch runs are main's)."""
    return not (init == "scratch" and VARIANTS[variant].shares_scratch)


def all_checkpoints(trained_only=False):
    """(variant, seed, init, branch, iteration) of every checkpoint of the study (with
    trained_only: leaving out the scratch cells a pretraining variant shares with main)."""
    return [(v, seed, init, branch, it) for v in VARIANTS for seed in SEEDS for init in INITS
            if trains(v, init) or not trained_only
            for branch in branches(v) for it in VARIANTS[v].plan.checkpoints(branch)]


def variant_jobs(variant, branch):
    """The training jobs of a variant's branch: (start, checkpoints), detection.job_iters each."""
    return VARIANTS[variant].plan.jobs(branch, config["detection"]["job_iters"])


def all_train_jobs():
    """(variant, seed, init, branch, last iteration) of every training job of the study."""
    return [(v, seed, init, branch, ckpts[-1]) for v in VARIANTS for seed in SEEDS for init in INITS
            if trains(v, init) for branch in branches(v) for _, ckpts in variant_jobs(v, branch)]


def job_end(variant, branch, iteration):
    """The last checkpoint of the training job that writes `branch`'s checkpoint at `iteration`:
    the job's declared output (the checkpoints before it are written on the way)."""
    return VARIANTS[variant].plan.job_of(branch, int(iteration), config["detection"]["job_iters"])[1][-1]


def benchmark_files():
    """The benchmark files of every pre-training, training and evaluation job."""
    files = []
    if RUNS_PRETRAINING:
        files += [f"{R}/benchmarks/pretrain/{key}.tsv" for key in PRETRAININGS]
    files += [cell_path(f"{R}/benchmarks/train/{CELL}.tsv", *job) for job in all_train_jobs()]
    files += [cell_path(f"{R}/benchmarks/evaluate/{CELL}.tsv", *cell) for cell in all_checkpoints(True)]
    return files


def phase_files():
    """The time-per-phase files the training jobs write (start-up, setup, training, evaluation)."""
    return [cell_path(f"{R}/benchmarks/train/{CELL}.phases.json", *job) for job in all_train_jobs()]


def train_launcher(kind="train"):
    """One process, or with several GPUs per job, torchrun with one process per GPU."""
    gpus = config["resources"][kind]["gpu"]
    if gpus > 1:
        return f"python -m torch.distributed.run --standalone --nproc-per-node {gpus} -m rethink.engine.{kind}"
    return f"python -m rethink.engine.{kind}"


def threads_for(kind):
    return config["threads"][kind]


def resources_for(kind):
    """A job kind's resources; its `partition`, when set, as the SLURM plugin's slurm_partition
    (GPU kinds to a GPU partition, the rest to the default one)."""
    res = config["resources"][kind]
    out = {"mem_mb": res["mem_mb"], "runtime": res["runtime"], "gpu": res["gpu"]}
    if res.get("partition"):
        out["slurm_partition"] = res["partition"]
    return out


# Training jobs of the forked plan (the train rule): each trains consecutive segments of one
# branch and writes a checkpoint at every one of their ends; its declared output is the last.

def train_job(wildcards):
    """(start, checkpoints, schedule length or 0) of the job whose last checkpoint is
    wildcards.iteration."""
    plan = VARIANTS[wildcards.variant].plan
    end = int(wildcards.iteration)
    start, ckpts = plan.job_of(wildcards.branch, end, config["detection"]["job_iters"])
    if ckpts[-1] != end:
        raise ValueError(f"{wildcards.branch}/iter_{end:06d} is written on the way by the training "
                         f"job that ends at {ckpts[-1]}; ask for that one (or its evaluation)")
    total = 0 if wildcards.branch == TRUNK else plan.schedule(wildcards.branch).iters
    return start, ckpts, total


def resume_point(wildcards):
    """(branch, iteration) of the checkpoint the job resumes from (the one before its first
    segment); iteration 0: none."""
    _, ckpts, _ = train_job(wildcards)
    return VARIANTS[wildcards.variant].plan.segment_start(wildcards.branch, ckpts[0])


def train_annotations(variant):
    """The variant's train annotation file: its subset, a task variant's own file, or None
    for the whole train set."""
    if VARIANTS[variant].task:
        return task_annotations(variant, "train")
    return subset_input(variant)


def subset_input(variant):
    """The train annotation file the workflow writes for a variant (a regime's subset, a
    dataset variant's converted train sets), or None. A task variant's files are the data's
    own: its jobs wait for their check instead (KEYPOINTS_CHECKED), so a dry run on real data
    needs no file it has not been given."""
    if VARIANTS[variant].dataset:
        return VOC_CONVERTED.format(split="train")
    return SUBSET.format(variant=variant) if on_subset(VARIANTS[variant].kind) else None


def job_inputs(wildcards):
    branch, start = resume_point(wildcards)
    inputs = {"checked": variant_checked(wildcards.variant)}
    subset = subset_input(wildcards.variant)
    if subset:
        inputs["subset"] = subset
    if VARIANTS[wildcards.variant].task:
        inputs["task_checked"] = KEYPOINTS_CHECKED
    if start > 0:  # the job that wrote the checkpoint: its declared (last) one
        inputs["resume_job"] = cell_path(CKPT, wildcards.variant, wildcards.seed, wildcards.init,
                                         branch, job_end(wildcards.variant, branch, start))
    elif wildcards.init == "pretrained":
        inputs["backbone"] = variant_backbone(wildcards.variant)
    return inputs


def job_args(wildcards, input):
    start, ckpts, total = train_job(wildcards)
    args = f"--start-iter {start} --end-iter {ckpts[-1]} --schedule-iters {total}"
    if len(ckpts) > 1:
        args += " --checkpoints " + " ".join(str(c) for c in ckpts[:-1])
    branch, start = resume_point(wildcards)
    if start > 0:
        resume = cell_path(CKPT, wildcards.variant, wildcards.seed, wildcards.init, branch, start)
        args += f" --resume {shlex.quote(resume)} --resume-job {shlex.quote(input.resume_job)}"
    for key, flag in (("backbone", "--backbone"), ("subset", "--train-annotations")):
        if key in input.keys():
            args += f" {flag} {shlex.quote(input[key])}"
    if VARIANTS[wildcards.variant].task:  # its own train file
        args += f" --train-annotations {shlex.quote(task_annotations(wildcards.variant, 'train'))}"
    val = variant_val_annotations(wildcards.variant)
    if val:  # its own val file scores the job's checkpoints
        args += f" --val-annotations {shlex.quote(val)}"
    return args


def evaluated_checkpoint(wildcards):
    """The checkpoint an evaluate job scores, and (its input) the training job output behind it."""
    path = cell_path(CKPT, wildcards.variant, wildcards.seed, wildcards.init, wildcards.branch,
                     int(wildcards.iteration))
    job = cell_path(CKPT, wildcards.variant, wildcards.seed, wildcards.init, wildcards.branch,
                    job_end(wildcards.variant, wildcards.branch, wildcards.iteration))
    return path, job


def curve_images_arg(wildcards):
    """A checkpoint that is no schedule's end only draws a curve: scored on the first
    evaluate.curve_images val images; a schedule's end, which the claims use, on all."""
    n = config["evaluate"].get("curve_images")
    ends = {s.name: s.iters for s in VARIANTS[wildcards.variant].plan.schedules}
    end = ends.get(wildcards.branch) == int(wildcards.iteration)
    return "" if end or not n else f"--val-images {n}"


def variant_model(wildcards, for_eval=False):
    v = VARIANTS[wildcards.variant]
    return as_json({**study_config.model_settings(config, for_eval, variant=v), "input": input_conventions(v.norm)})


def variant_train(wildcards):
    return as_json(study_config.train_settings(VARIANTS[wildcards.variant], int(wildcards.seed)))


def figure_params():
    return {k: config["figures"][k] for k in ("dpi", "style", "context", "palette")}


def data_root(configured, synthetic):
    """The dataset folder a job reads: the configured real one, or the synthetic one."""
    return lambda wildcards: configured or synthetic


def study_variants():
    """What study.json needs of each variant (not the training keys: they don't change it)."""
    model = config["model"]
    out = {}
    for name, v in VARIANTS.items():
        det = v.detection
        out[name] = {"kind": v.kind, "norm": v.norm, "regime": name if on_subset(v.kind) else "full",
                     "fraction": v.fraction, "one_x": det["one_x"], "schedules": det["schedules"],
                     "checkpoint_every": det["checkpoint_every"], "batch_size": det["batch_size"],
                     "min_size": model["min_size"], "max_size": model["max_size"],
                     "train_scales": det["scales"] or [model["min_size"]],
                     "group_by_aspect": det["group_by_aspect"],
                     "backbone": {k: (v.model or {}).get(k, model[k]) for k in study_config.MODEL_OVERRIDE_KEYS}}
        if v.shares_scratch:
            out[name].update(scratch_from=v.base, pretrain_overrides=v.pretrain)
        if v.model is not None:
            out[name].update(model_overrides=v.model, **({"pretrain_overrides": v.pretrain} if v.pretrain else {}))
        if v.task:
            out[name].update(task=v.task, keypoint_head=config["keypoints"]["head"])
        if v.dataset:
            out[name].update(dataset=v.dataset)
        if v.tta:
            out[name].update(tta=study_config.tta_settings(config, v.tta))
    return out


# Figures and tables (figures.smk).

FIG_SRC = os.path.join(PACKAGE_DIR, "rethink", "figures")
METRICS = f"{R}/metrics/all_metrics.csv"
REFERENCE = f"{R}/figures/paper_reference.json" if config["figures"]["reference"] else []
KINDS_RUN = {v.kind for v in VARIANTS.values()}


class Figure(typing.NamedTuple):
    name: str             # rethink.figures.<name>, results/figures/<name>.{png,pdf}, report/<name>.rst
    kind: str | None      # drawn when the study has variants of this kind (None: always)
    category: str         # the report's category ...
    label: str            # ... and label
    reference: bool       # draws the paper's numbers (figures.reference) too
    table: bool           # writes tables/<name>.{csv,md} beside it
    reads: tuple = ()     # rethink.figures modules it reads through, besides common
    pretrain: bool = False  # reads pre-training's metrics
    margin: bool = False  # draws the claims' margin (claims.margin)


# The figures of the study's variants, one row each; the rules (figures.smk) and rule all's
# targets follow from it.
FIGURE_TABLE = [
    Figure("ap_curves", None, "Main comparison", "AP vs iterations", False, False, pretrain=True),
    Figure("final_ap", None, "Schedules", "final AP per schedule", True, False),
    Figure("lead", None, "Schedules", "pre-training's lead against the margin", False, False, margin=True),
    Figure("less_data", "regime", "Less data", "AP vs iterations per data regime", True, False),
    Figure("norms", "norm", "Normalisation", "GN vs SyncBN", False, False),
    Figure("pretrain_strength", "pretraining", "Pre-training", "pre-training strength", False, False),
    Figure("models", "model", "Models", "deeper, wider and unnormalised models", True, False),
    Figure("keypoints", "task", "Keypoints", "keypoint AP, scratch vs pretrained", True, True,
           ("final_table", "variant_metric")),
    Figure("datasets", "dataset", "Datasets", "VOC mAP, scratch vs pretrained", True, True,
           ("final_table", "variant_metric")),
    Figure("recipes", "recipe", "Recipes", "enhanced recipe, scratch vs pretrained", True, True,
           ("final_table", "variant_metric")),
]


def figure_pair(name):
    return [f"{R}/figures/{name}.png", f"{R}/figures/{name}.pdf"]


FIGURES = [
    *[path for fig in FIGURE_TABLE if fig.kind is None or fig.kind in KINDS_RUN
      for path in figure_pair(fig.name) + ([f"{R}/tables/{fig.name}.{ext}" for ext in ("csv", "md")]
                                           if fig.table else [])],
    *figure_pair("compute_seen"),
    *(figure_pair("pretrain_curve") if RUNS_PRETRAINING else []),
    *[f"{R}/tables/final_metrics.{ext}" for ext in ("csv", "md", "tex")],
    *[f"{R}/tables/claims.{ext}" for ext in ("csv", "md")],
    *[f"{R}/tables/compute_seen.{ext}" for ext in ("csv", "json")],
    *[f"{R}/tables/world_stats.{ext}" for ext in ("csv", "md")],
    *[f"{R}/tables/job_costs.{ext}" for ext in ("csv", "md")],
]

def reference_arg(wildcards, input):
    return f"--reference {shlex.quote(input.reference)}" if input.reference else ""


def figure_inputs(script):
    """A figure's inputs: its script and the modules it reads through, then the data."""
    return {"script": f"{FIG_SRC}/{script}.py", "common": f"{FIG_SRC}/common.py",
            "results_module": f"{PACKAGE_DIR}/rethink/analysis/results.py",
            "inputs_module": f"{PACKAGE_DIR}/rethink/analysis/inputs.py",
            "stats_module": f"{PACKAGE_DIR}/rethink/analysis/stats.py",
            "study": STUDY, "metrics": METRICS, "reference": REFERENCE}


def variant_annotations(wildcards):
    """VARIANT=PATH for every variant's train annotation file."""
    full = f"{COCO}/annotations/instances_train2017.json"
    return {name: train_annotations(name) or full for name in VARIANTS}


def evaluate_inputs(wildcards):
    """What an evaluate job reads: the training job behind the checkpoint, the layout check of
    the variant's data, and a val file of its own where it has one (a task variant's, scored
    for its task too; a dataset variant's, box-only and with VOC's mAP too)."""
    v = wildcards.variant
    inputs = {"job": evaluated_checkpoint(wildcards)[1], "checked": variant_checked(v)}
    if v in TASK_VARIANTS:  # its val file: checked there (real data's, where the user keeps it)
        inputs["task_checked"] = KEYPOINTS_CHECKED
    if v in DATASET_VARIANTS:
        inputs["val"] = VOC_CONVERTED.format(split="val")
    return inputs


def evaluate_outputs(wildcards, input, output):
    """The result files besides bbox's: segm unless the model is box-only (a dataset
    variant), keypoints for a task variant; and the val file the job scores on."""
    folder = os.path.dirname(output.metrics)
    args = [] if wildcards.variant in DATASET_VARIANTS else ["--out-segm", f"{folder}/segm_results.json"]
    if wildcards.variant in TASK_VARIANTS:
        args += ["--out-keypoints", f"{folder}/keypoints_results.json",
                 "--val-annotations", task_annotations(wildcards.variant, "val")]
    if input.get("val"):
        args += ["--val-annotations", input.val]
    return " ".join(shlex.quote(a) for a in args)


def figure_options(fig):
    """A figure's optional arguments, from its FIGURE_TABLE row: the paper's reference numbers
    (if it draws them and the study has them), pre-training's metrics (if it reads them), the
    claims' margin (if it draws it). A function of the wildcards alone, so that a change of
    any of them reruns the figure (a param function taking `input` would be no rerun trigger)."""
    def options(wildcards):
        args = [f"--reference {shlex.quote(REFERENCE)}"] if fig.reference and REFERENCE else []
        if fig.pretrain and RUNS_PRETRAINING and PRETRAIN_METRICS:
            args.append(f"--pretrain {shlex.quote(PRETRAIN_METRICS)}")
        if fig.margin:
            args.append(f"--margin {config['claims']['margin']}")
        return " ".join(args)
    return options
