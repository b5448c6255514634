# Mask R-CNN training as segments of each variant's forked plan: one trunk at base LR per
# (variant, seed, init), and a tail per schedule forked from the trunk checkpoint where its
# first LR drop falls. A training job trains consecutive segments of one branch (at most
# detection.job_iters iterations; null: the whole branch), resuming from the checkpoint
# before them, and writes and evaluates a checkpoint at the end of each.


rule subset:
    input:
        checked=COCO_CHECKED,
    output:
        SUBSET,
    params:
        root=COCO,
        fraction=lambda wildcards: VARIANTS[wildcards.variant].fraction,
        seed=config["detection"]["seed"],
    log:
        f"{R}/logs/data/subset_{{variant}}.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.data.subsets --coco {params.root:q} --fraction {params.fraction} --seed {params.seed} "
        "--layout-stats {input.checked:q} --out {output:q} > {log:q} 2>&1"


# The training job's own evaluation of its checkpoints takes the evaluation settings from
# the environment, not from params: evaluation keys are then rerun triggers of the evaluate
# rule alone (evaluate.smk), never of training. Every metrics file records the settings used.
os.environ.update(RETHINK_TRAINING_EVAL_ARGS=(
    f"--eval-extra {as_json(study_config.eval_only_model_settings(config))} "
    + (f"--eval-extra-by-variant {as_json(study_config.eval_extra_by_variant(config))} "
       if study_config.eval_extra_by_variant(config) else "") +
    f"--eval-batch-size {config['evaluate']['batch_size']} "
    + (f"--eval-curve-images {config['evaluate']['curve_images']} " if config["evaluate"].get("curve_images") else "") +
    f"--eval-backend {config['evaluate']['backend']}") if config["evaluate"]["in_training"] else "")


rule train:
    input:
        unpack(job_inputs),
    output:
        checkpoint=CKPT,
        phases=f"{R}/benchmarks/train/{CELL}.phases.json",
    params:
        job=job_args,
        launcher=train_launcher(),
        root=lambda wildcards: variant_root(wildcards.variant),
        model=variant_model,
        train=variant_train,
        eval_dir=lambda wildcards: f"{R}/eval/{wildcards.variant}/seed{wildcards.seed}/{wildcards.init}/{wildcards.branch}",
        workers=config["detection"]["workers"],
        log_every=config["detection"]["log_every"],
        device=config["device"],
    log:
        f"{R}/logs/detection/{CELL}.log",
    benchmark:
        f"{R}/benchmarks/train/{CELL}.tsv"
    threads: threads_for("train")
    resources:
        **resources_for("train"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.core.gpus --count {resources.gpu} -- {params.launcher} --coco {params.root:q} --model {params.model:q} "
        "--train {params.train:q} --init {wildcards.init} {params.job} --out {output.checkpoint:q} "
        "--layout-stats {input.checked:q} --variant {wildcards.variant} --seed {wildcards.seed} "
        "--branch {wildcards.branch} --eval-dir {params.eval_dir:q} $RETHINK_TRAINING_EVAL_ARGS "
        "--phases-out {output.phases:q} "
        "--threads {threads} --workers {params.workers} --log-every {params.log_every} "
        "--device {params.device} --gpus {resources.gpu} > {log:q} 2>&1"


rule plan:
    input:
        checked=COCO_CHECKED,
        pretrain=PRETRAIN_METRICS or [],
        variant_pretrain=[variant_pretrain_metrics(v) for v in OWN_PRETRAINING_VARIANTS],
        datasets=VOC_CHECKED if DATASET_VARIANTS else [],
    output:
        STUDY,
    params:
        variants=as_json(study_variants()),
        inits=" ".join(INITS),
        seeds=" ".join(str(s) for s in SEEDS),
        pretrain=lambda wildcards, input: f"--pretrain-metrics {shlex.quote(input.pretrain)}" if input.pretrain else "",
        variant_pretrain=lambda wildcards: ("--variant-pretrain " + " ".join(
            shlex.quote(f"{v}={variant_pretrain_metrics(v)}") for v in OWN_PRETRAINING_VARIANTS) if OWN_PRETRAINING_VARIANTS else "")
            # a dataset variant's train images are counted by its conversion (an argument here, so
            # that the command of studies without one stays as it was)
            + (f" --dataset-stats voc={shlex.quote(VOC_CHECKED)}" if DATASET_VARIANTS else ""),
    log:
        f"{R}/logs/detection/plan.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.core.study --variants {params.variants:q} --inits {params.inits} --seeds {params.seeds} "
        "--coco-stats {input.checked:q} {params.pretrain} {params.variant_pretrain} --out {output:q} > {log:q} 2>&1"
