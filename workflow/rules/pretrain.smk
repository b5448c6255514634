# ImageNet-style pre-training of the backbone. Skipped when pretrain.checkpoint names an
# existing backbone (the detection rules then read that file instead).


rule pretrain:
    input:
        checked=IMAGENET_CHECKED,
    output:
        backbone=f"{R}/pretrain/backbone.pt",
        metrics=PRETRAIN_METRICS,
    params:
        root=IMAGENET,
        model=as_json(study_config.model_settings(config, for_eval=False)),
        pretrain=as_json({k: v for k, v in config["pretrain"].items() if k not in ("checkpoint", "workers")}),
        workers=config["pretrain"]["workers"],
        device=config["device"],
    log:
        f"{R}/logs/pretrain/pretrain.log",
    benchmark:
        f"{R}/benchmarks/pretrain/pretrain.tsv"
    threads: threads_for("pretrain")
    resources:
        **resources_for("pretrain"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.gpus --count {resources.gpu} -- python -m rethink.pretrain --imagenet {params.root:q} --model {params.model:q} "
        "--pretrain {params.pretrain:q} --out {output.backbone:q} --out-metrics {output.metrics:q} "
        "--threads {threads} --workers {params.workers} --device {params.device} > {log:q} 2>&1"
