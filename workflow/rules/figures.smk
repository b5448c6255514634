# Paper-style figures and tables, one rule and one script per figure. Each rule lists its
# script as an input, so editing a script reruns that figure alone; figure-only config
# keys (figures.*) are params of these rules only.

FIG_SRC = os.path.join(PACKAGE_DIR, "rethink", "figures")
FIGURES = [
    f"{R}/figures/ap_curves.png",
    f"{R}/figures/ap_curves.pdf",
    f"{R}/figures/final_ap.png",
    f"{R}/figures/final_ap.pdf",
    f"{R}/tables/final_metrics.csv",
    f"{R}/tables/final_metrics.md",
    f"{R}/tables/final_metrics.tex",
    f"{R}/tables/job_costs.csv",
    f"{R}/tables/job_costs.md",
]



rule fig_ap_curves:
    input:
        script=f"{FIG_SRC}/ap_curves.py",
        common=f"{FIG_SRC}/common.py",
        results_module=f"{PACKAGE_DIR}/rethink/results.py",
        plan=f"{R}/detection/plan.json",
        metrics=f"{R}/metrics/all_metrics.csv",
        pretrain=PRETRAIN_METRICS if RUNS_PRETRAINING else [],
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
        "python -m rethink.figures.ap_curves --plan {input.plan:q} --metrics {input.metrics:q} "
        "{params.pretrain} --out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} "
        "--style {params.style} --context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule fig_final_ap:
    input:
        script=f"{FIG_SRC}/final_ap.py",
        common=f"{FIG_SRC}/common.py",
        results_module=f"{PACKAGE_DIR}/rethink/results.py",
        plan=f"{R}/detection/plan.json",
        metrics=f"{R}/metrics/all_metrics.csv",
    output:
        png=report(f"{R}/figures/final_ap.png", caption="../report/final_ap.rst",
                   category="Schedules", labels={"figure": "final AP per schedule"}),
        pdf=f"{R}/figures/final_ap.pdf",
    params:
        **figure_params(),
    log:
        f"{R}/logs/figures/final_ap.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.figures.final_ap --plan {input.plan:q} --metrics {input.metrics:q} "
        "--out-png {output.png:q} --out-pdf {output.pdf:q} --dpi {params.dpi} --style {params.style} "
        "--context {params.context} --palette {params.palette:q} > {log:q} 2>&1"


rule table_final_metrics:
    input:
        script=f"{FIG_SRC}/final_table.py",
        common=f"{FIG_SRC}/common.py",
        results_module=f"{PACKAGE_DIR}/rethink/results.py",
        plan=f"{R}/detection/plan.json",
        metrics=f"{R}/metrics/all_metrics.csv",
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
        "python -m rethink.figures.final_table --plan {input.plan:q} --metrics {input.metrics:q} "
        "--out-csv {output.csv:q} --out-md {output.md:q} --out-tex {output.tex:q} > {log:q} 2>&1"


rule table_job_costs:
    input:
        script=f"{PACKAGE_DIR}/rethink/costs.py",
        benchmarks=benchmark_files(),
    output:
        csv=report(f"{R}/tables/job_costs.csv", caption="../report/job_costs.rst",
                   category="Cost", labels={"figure": "wall time and memory per stage"}),
        md=f"{R}/tables/job_costs.md",
    log:
        f"{R}/logs/figures/job_costs.log",
    threads: 1
    resources:
        **resources_for("data"),
    conda:
        "../../envs/plot.yaml"
    shell:
        "python -m rethink.costs --out-csv {output.csv:q} --out-md {output.md:q} "
        "{input.benchmarks:q} > {log:q} 2>&1"
