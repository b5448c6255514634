# Paper-style figures and tables, one rule and one script per figure. Each rule lists its
# script as an input, so editing a script reruns that figure alone; figure-only config
# keys (figures.*) are params of these rules only.


rule paper_reference:
    output:
        f"{R}/figures/paper_reference.json",
    params:
        reference=as_json(config["figures"]["reference"]),
    log:
        f"{R}/logs/figures/paper_reference.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "echo {params.reference:q} > {output:q} 2> {log:q}"


rule fig_ap_curves:
    input:
        **figure_inputs("ap_curves"),
        pretrain=PRETRAIN_METRICS if RUNS_PRETRAINING and PRETRAIN_METRICS else [],
    output:
        png=report(f"{R}/figures/ap_curves.png", caption="../report/ap_curves.rst",
                   category="Main comparison", labels={"figure": "AP vs iterations"}),
        pdf=f"{R}/figures/ap_curves.pdf",
    params:
        **figure_params(),
        pretrain=lambda wildcards, input: f"--pretrain {shlex.quote(input.pretrain)}" if input.pretrain else "",
    log:
        f"{R}/logs/figures/ap_curves.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.ap_curves --study {input.study:q} --metrics {input.metrics:q} "
        "{params.pretrain} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_final_ap:
    input:
        **figure_inputs("final_ap"),
    output:
        png=report(f"{R}/figures/final_ap.png", caption="../report/final_ap.rst",
                   category="Schedules", labels={"figure": "final AP per schedule"}),
        pdf=f"{R}/figures/final_ap.pdf",
    params:
        **figure_params(),
        reference=reference_arg,
    log:
        f"{R}/logs/figures/final_ap.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.final_ap --study {input.study:q} --metrics {input.metrics:q} "
        "{params.reference} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_less_data:
    input:
        **figure_inputs("less_data"),
    output:
        png=report(f"{R}/figures/less_data.png", caption="../report/less_data.rst",
                   category="Less data", labels={"figure": "AP vs iterations per data regime"}),
        pdf=f"{R}/figures/less_data.pdf",
    params:
        **figure_params(),
        reference=reference_arg,
    log:
        f"{R}/logs/figures/less_data.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.less_data --study {input.study:q} --metrics {input.metrics:q} "
        "{params.reference} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_norms:
    input:
        **figure_inputs("norms"),
    output:
        png=report(f"{R}/figures/norms.png", caption="../report/norms.rst",
                   category="Normalisation", labels={"figure": "GN vs SyncBN"}),
        pdf=f"{R}/figures/norms.pdf",
    params:
        **figure_params(),
    log:
        f"{R}/logs/figures/norms.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.norms --study {input.study:q} --metrics {input.metrics:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_pretrain_strength:
    input:
        **figure_inputs("pretrain_strength"),
    output:
        png=report(f"{R}/figures/pretrain_strength.png", caption="../report/pretrain_strength.rst",
                   category="Pre-training", labels={"figure": "pre-training strength"}),
        pdf=f"{R}/figures/pretrain_strength.pdf",
    params:
        **figure_params(),
    log:
        f"{R}/logs/figures/pretrain_strength.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.pretrain_strength --study {input.study:q} --metrics {input.metrics:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


# Other backbones (study.models): each one's scratch and pretrained runs, and the gap.
rule fig_models:
    input:
        **figure_inputs("models"),
    output:
        png=report(f"{R}/figures/models.png", caption="../report/models.rst",
                   category="Models", labels={"figure": "deeper, wider and unnormalised models"}),
        pdf=f"{R}/figures/models.pdf",
    params:
        **figure_params(),
        reference=reference_arg,
    log:
        f"{R}/logs/figures/models.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.models --study {input.study:q} --metrics {input.metrics:q} "
        "{params.reference} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_keypoints:
    input:
        **figure_inputs("keypoints"),
        table_module=f"{FIG_SRC}/final_table.py",
        mechanism=f"{FIG_SRC}/variant_metric.py",
    output:
        png=report(f"{R}/figures/keypoints.png", caption="../report/keypoints.rst",
                   category="Keypoints", labels={"figure": "keypoint AP, scratch vs pretrained"}),
        pdf=f"{R}/figures/keypoints.pdf",
        csv=f"{R}/tables/keypoints.csv",
        md=f"{R}/tables/keypoints.md",
    params:
        **figure_params(),
        reference=reference_arg,
        module="keypoints",
    log:
        f"{R}/logs/figures/keypoints.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.{params.module} --study {input.study:q} --metrics {input.metrics:q} "
        "{params.reference} --out-csv {output.csv:q} --out-md {output.md:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


# The other kinds scored on a metric of their own: the same figure and table mechanism.
use rule fig_keypoints as fig_datasets with:
    input:
        **figure_inputs("datasets"),
        table_module=f"{FIG_SRC}/final_table.py",
        mechanism=f"{FIG_SRC}/variant_metric.py",
    output:
        png=report(f"{R}/figures/datasets.png", caption="../report/datasets.rst",
                   category="Datasets", labels={"figure": "VOC mAP, scratch vs pretrained"}),
        pdf=f"{R}/figures/datasets.pdf",
        csv=f"{R}/tables/datasets.csv",
        md=f"{R}/tables/datasets.md",
    params:
        **figure_params(),
        reference=reference_arg,
        module="datasets",
    log:
        f"{R}/logs/figures/datasets.log",


use rule fig_keypoints as fig_recipes with:
    input:
        **figure_inputs("recipes"),
        table_module=f"{FIG_SRC}/final_table.py",
        mechanism=f"{FIG_SRC}/variant_metric.py",
    output:
        png=report(f"{R}/figures/recipes.png", caption="../report/recipes.rst",
                   category="Recipes", labels={"figure": "enhanced recipe, scratch vs pretrained"}),
        pdf=f"{R}/figures/recipes.pdf",
        csv=f"{R}/tables/recipes.csv",
        md=f"{R}/tables/recipes.md",
    params:
        **figure_params(),
        reference=reference_arg,
        module="recipes",
    log:
        f"{R}/logs/figures/recipes.log",


rule fig_compute_seen:
    input:
        script=f"{FIG_SRC}/compute_seen.py",
        common=f"{FIG_SRC}/common.py",
        compute=f"{R}/tables/compute_seen.csv",
    output:
        png=report(f"{R}/figures/compute_seen.png", caption="../report/compute_seen.rst",
                   category="Cost", labels={"figure": "images, instances, pixels seen"}),
        pdf=f"{R}/figures/compute_seen.pdf",
    params:
        **figure_params(),
    log:
        f"{R}/logs/figures/compute_seen.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.compute_seen --compute {input.compute:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule table_final_metrics:
    input:
        **figure_inputs("final_table"),
    output:
        csv=report(f"{R}/tables/final_metrics.csv", caption="../report/final_metrics.rst",
                   category="Main comparison", labels={"figure": "final metrics table"}),
        md=f"{R}/tables/final_metrics.md",
        tex=f"{R}/tables/final_metrics.tex",
    log:
        f"{R}/logs/figures/final_table.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.final_table --study {input.study:q} --metrics {input.metrics:q} "
        "--out-csv {output.csv:q} --out-md {output.md:q} --out-tex {output.tex:q} > {log:q} 2>&1"


rule fig_pretrain_curve:
    input:
        script=f"{FIG_SRC}/pretrain_curve.py",
        common=f"{FIG_SRC}/common.py",
        curves=list(PRETRAIN_CURVES.values()),
    output:
        png=report(f"{R}/figures/pretrain_curve.png", caption="../report/pretrain_curve.rst",
                   category="Pre-training", labels={"figure": "val top-1 per epoch"}),
        pdf=f"{R}/figures/pretrain_curve.pdf",
    params:
        **figure_params(),
        metrics=" ".join(shlex.quote(f"{key}={path}") for key, path in PRETRAIN_CURVES.items()),
    log:
        f"{R}/logs/figures/pretrain_curve.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.pretrain_curve --metrics {params.metrics} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"
