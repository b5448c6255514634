# Paper-style figures and tables, one rule and one script per figure: the figures of the
# variants from FIGURE_TABLE (common.smk), then the cost and pre-training figures and the
# final table. Each rule lists its script as an input, so editing a script reruns that
# figure alone; figure-only config keys (figures.*) are params of these rules only.


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


# One rule per row of FIGURE_TABLE (common.smk): fig_<name> runs rethink.figures.<name>.
# Everything a row decides is bound here, as a value of the rule (its params); the shell
# command names no loop variable, since Snakemake formats it when the job runs.
for fig in FIGURE_TABLE:

    rule:
        name:
            f"fig_{fig.name}"
        input:
            **figure_inputs(fig.name),
            **{module: f"{FIG_SRC}/{module}.py" for module in fig.reads},
            **({"pretrain": PRETRAIN_METRICS if RUNS_PRETRAINING and PRETRAIN_METRICS else []}
               if fig.pretrain else {}),
        output:
            png=report(f"{R}/figures/{fig.name}.png", caption=f"../report/{fig.name}.rst",
                       category=fig.category, labels={"figure": fig.label}),
            pdf=f"{R}/figures/{fig.name}.pdf",
            **({"csv": f"{R}/tables/{fig.name}.csv", "md": f"{R}/tables/{fig.name}.md"} if fig.table else {}),
        params:
            **figure_params(),
            module=fig.name,
            options=figure_options(fig),
            tables=(f"--out-csv {shlex.quote(f'{R}/tables/{fig.name}.csv')} "
                    f"--out-md {shlex.quote(f'{R}/tables/{fig.name}.md')}" if fig.table else ""),
        log:
            f"{R}/logs/figures/{fig.name}.log",
        threads: 1
        resources:
            **resources_for("data"),
        conda:
            "../../envs/plot.yaml"
        shell:
            "python -m rethink.figures.{params.module} --study {input.study:q} --metrics {input.metrics:q} "
            "{params.options} {params.tables} "
            "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
            "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


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
