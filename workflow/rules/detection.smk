# Mask R-CNN training as segments of each variant's forked plan: one trunk at base LR per
# (variant, seed, init), and a tail per schedule forked from the trunk checkpoint where its
# first LR drop falls. Each segment resumes from the checkpoint before it and writes the next.


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
        "python -m rethink.subsets --coco {params.root:q} --fraction {params.fraction} --seed {params.seed} "
        "--layout-stats {input.checked:q} --out {output:q} > {log:q} 2>&1"


rule train_segment:
    input:
        unpack(segment_inputs),
    output:
        CKPT,
    params:
        segment=segment_args,
        launcher=train_launcher(),
        root=COCO,
        model=variant_model,
        train=variant_train,
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
        "python -m rethink.gpus --count {resources.gpu} -- {params.launcher} --coco {params.root:q} --model {params.model:q} "
        "--train {params.train:q} --init {wildcards.init} {params.segment} --out {output:q} "
        "--layout-stats {input.checked:q} "
        "--threads {threads} --workers {params.workers} --log-every {params.log_every} "
        "--device {params.device} > {log:q} 2>&1"


rule plan:
    input:
        checked=COCO_CHECKED,
        pretrain=PRETRAIN_METRICS or [],
    output:
        STUDY,
    params:
        variants=as_json(study_variants()),
        inits=" ".join(INITS),
        seeds=" ".join(str(s) for s in SEEDS),
        pretrain=lambda wildcards, input: f"--pretrain-metrics {shlex.quote(input.pretrain)}" if input.pretrain else "",
    log:
        f"{R}/logs/detection/plan.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.study --variants {params.variants:q} --inits {params.inits} --seeds {params.seeds} "
        "--coco-stats {input.checked:q} {params.pretrain} --out {output:q} > {log:q} 2>&1"
