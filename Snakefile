# One rule per DVC stage, derived from dvc.yaml through DVC's own resolver, so `vars`,
# `${}`, `foreach` and `matrix` mean the same to both engines and nobody keeps two lists.
#
#   snakemake --cores 2                         # local, same artifacts as `dvc repro`
#   snakemake --profile profiles/slurm          # on a SLURM cluster
#   dvc commit -f                               # afterwards: dvc.lock and the cache, as after dvc repro
#
# Traps handled here (see DESIGN.md):
# - the command travels through `params` (a callable) and runs as `shell("{params.cmd}")`:
#   no late binding of a loop variable, no `{` read as a wildcard;
# - an output whose last path component has no "." is a directory (`directory()`);
# - parameter values (not the params file) are rule params, so Snakemake's params trigger
#   reruns exactly the stages whose values changed, as DVC does.
# Cluster resources come from each stage's `meta: snakemake:` block
# (threads, mem_mb, runtime in minutes, gpu), and so does `priority` (ready jobs of higher
# priority start first: give the longest chain of stages the highest).

import json
from pathlib import Path

from hrlzoo.pipeline.dag import CHECK_MARKER, dvc_stages

STAGES = dvc_stages(workflow.basedir)


def _directory_or_file(path):
    return directory(path) if "." not in Path(path).name else path


def _input(path):
    """The params check's marker never changes its bytes, only its time: a rerun of the check
    (any params file edited) must not make every stage look outdated (`ancient`)."""
    return ancient(path) if path == CHECK_MARKER else path


# Every output, not only the final ones: committed reports must not hide missing data/
# (Snakemake does not look upstream of an output that exists and is newer than its inputs).
rule all:
    input:
        [o for s in STAGES for o in s.outs],
    default_target: True


for _s in STAGES:
    rule:
        name:
            _s.rule
        input:
            [_input(d) for d in _s.deps],
        output:
            [_directory_or_file(o) for o in _s.outs],
        params:
            cmd=(lambda wildcards, c=_s.cmd: c),
            values=(lambda wildcards, v=json.dumps(_s.param_values, sort_keys=True): v),
        threads: _s.threads
        priority: _s.priority
        resources:
            **_s.resources,
        shell:
            "{params.cmd}"
