# Mask R-CNN training as segments of the forked plan: one trunk at base LR per init, and
# a tail per schedule forked from the trunk checkpoint where its first LR drop falls.
# Each segment resumes from the checkpoint before it and writes the next one.


rule train_segment:
    input:
        unpack(segment_inputs),
    output:
        CKPT,
    params:
        segment=segment_args,
        launcher=train_launcher(),
        root=COCO,
        model=as_json(study_config.model_settings(config, for_eval=False)),
        train=as_json(study_config.train_settings(config)),
        workers=config["detection"]["workers"],
        log_every=config["detection"]["log_every"],
        device=config["device"],
    log:
        f"{R}/logs/detection/{{init}}/{{branch}}/iter_{{iteration}}.log",
    benchmark:
        f"{R}/benchmarks/train/{{init}}/{{branch}}/iter_{{iteration}}.tsv"
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
    output:
        f"{R}/detection/plan.json",
    params:
        one_x=config["detection"]["one_x"],
        every=config["detection"]["checkpoint_every"],
        schedules=" ".join(str(m) for m in config["detection"]["schedules"]),
        extra=as_json({"inits": INITS, "batch_size": config["detection"]["batch_size"]}),
    log:
        f"{R}/logs/detection/plan.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.schedule --one-x {params.one_x} --schedules {params.schedules} "
        "--checkpoint-every {params.every} --extra {params.extra:q} "
        "--out {output:q} > {log:q} 2>&1"
