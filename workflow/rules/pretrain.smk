# ImageNet-style pre-training of the backbone, once per norm the pretrained branches use
# (pretrain/GN, and pretrain/BN for the BN/SyncBN variants), once per pretraining variant
# (pretrain/GN_NAME: main's norm with that variant's pretrain.* keys), and once per model
# variant (pretrain/NORM_NAME: its own backbone with main's pretrain.* keys and its own).
# pretrain.checkpoint, when set, names an existing backbone for model.norm: that
# pre-training is skipped and the detection rules read it.


rule pretrain:
    input:
        checked=IMAGENET_CHECKED,
    output:
        backbone=f"{R}/pretrain/{{pretraining}}/backbone.pt",
        metrics=f"{R}/pretrain/{{pretraining}}/metrics.json",
    params:
        root=IMAGENET,
        launcher=train_launcher("pretrain"),
        model=lambda wildcards: as_json(study_config.pretrain_model_settings(config, wildcards.pretraining)),
        pretrain=lambda wildcards: as_json(study_config.pretrain_settings(config, wildcards.pretraining)),
        workers=config["pretrain"]["workers"],
        device=config["device"],
    log:
        f"{R}/logs/pretrain/{{pretraining}}.log",
    benchmark:
        f"{R}/benchmarks/pretrain/{{pretraining}}.tsv"
    threads: threads_for("pretrain")
    resources:
        **resources_for("pretrain"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.core.gpus --count {resources.gpu} -- {params.launcher} --imagenet {params.root:q} --model {params.model:q} "
        "--pretrain {params.pretrain:q} --out {output.backbone:q} --out-metrics {output.metrics:q} "
        "--threads {threads} --workers {params.workers} --device {params.device} --gpus {resources.gpu} > {log:q} 2>&1"


# pretrain.checkpoint, in any format rethink.models.backbones reads: checked against model.* and
# converted to this project's .pt before any training starts.
rule import_backbone:
    input:
        GIVEN_BACKBONE or [],
    output:
        IMPORTED_BACKBONE,
    params:
        model=as_json({**study_config.model_settings(config, False), "input": GIVEN_INPUT}),
        input=as_json(config["pretrain"]["input"]),
    log:
        f"{R}/logs/pretrain/import_backbone.log",
    threads: 1
    priority: 100  # first: a bad file stops the run before training (scratch jobs check it too)
    resources:
        **resources_for("data"),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m rethink.models.backbones --checkpoint {input:q} --model {params.model:q} "
        "--input {params.input:q} --out {output:q} > {log:q} 2>&1"
