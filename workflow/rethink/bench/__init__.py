"""Parts of the benchmark suite (`python -m rethink.bench.suite`): training throughput, profile
and FLOP rate (`training`), COCO evaluation backends (`evaluation`), loader workers' memory
(`loader_memory`), Snakemake overhead and study scaling (`pipeline`), forking savings
(`forking`) and the GPU check (`gpu`).

Every part returns a JSON-able dict with the command that reproduces it; timings are medians
of repeats, and comparisons are ratios measured side by side (interleaved) in one process,
because the machines this runs on are shared and noisy.
"""
