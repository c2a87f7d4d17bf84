"""Check every params file of the repository before anything runs:

    python -m hrlzoo.pipeline.check [OUT]

validates each `params/<paper>.yaml` against its schema (`stages/<paper>/params.py`) as a
whole, so a typo in a key that no stage tracks is caught too, and, under `dvc exp run`, that
git can commit the experiment. Exit 0 (and, given OUT, write a marker file whose bytes never
change), or exit 2 with one line naming the file, the key and what was expected.

It runs as dvc.yaml's first stage `params_check`, whose marker every stage depends on, so
`dvc repro` and Snakemake stop on a bad file before they touch any output; `make repro` and
`make test` run it too.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hrlzoo.pipeline.params import ParamsError, check_all
from hrlzoo.pipeline.stage import git_identity_problem, partial_path

MARKER = "every params file matches its schema\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        checked = check_all()
        problem = git_identity_problem()
        if problem:
            raise ParamsError(problem)
    except ParamsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args:
        out = Path(args[0])
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = partial_path(out)
        tmp.write_text(MARKER)
        tmp.replace(out)
    print(f"params: {len(checked)} files valid ({', '.join(checked)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
