# Mask R-CNN training as segments of each variant's forked plan: one trunk at base LR per
# (variant, seed, init), and a tail per schedule forked from the trunk checkpoint where its
# first LR drop falls. A training job trains consecutive segments of one branch (at most
# detection.job_iters iterations; null: the whole branch), resuming from the checkpoint
# before them, and writes and evaluates a checkpoint at the end of each.


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
        eval_settings=job_settings("training_eval"),
        given_backbone=job_settings("given_backbone"),
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
        "--branch {wildcards.branch} --eval-dir {params.eval_dir:q} --eval-settings {params.eval_settings:q} "
        "--given-backbone {params.given_backbone:q} "
        "--phases-out {output.phases:q} "
        "--threads {threads} --workers {params.workers} --log-every {params.log_every} "
        "--device {params.device} --gpus {resources.gpu} > {log:q} 2>&1"


rule study:
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
        f"{R}/logs/detection/study.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.core.study --variants {params.variants:q} --inits {params.inits} --seeds {params.seeds} "
        "--coco-stats {input.checked:q} {params.pretrain} {params.variant_pretrain} --out {output:q} > {log:q} 2>&1"
