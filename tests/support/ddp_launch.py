"""Run ``unroll`` commands under torchrun for the distributed tests (gloo on the CPU, float64).

``torchrun(root, jobs)`` starts one launch (it costs seconds; tiny runs don't) in which every
rank runs each argv list of ``jobs`` in turn, inside one process group, in float64, in the
folder ``root/rank<RANK>/``: rank 1 writing anything would show there. torchrun runs this file
as its worker script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def torchrun(root: Path, jobs: list[list[str]], nproc: int = 2) -> subprocess.CompletedProcess:
    """Run ``jobs`` on ``nproc`` ranks (one thread each); fails the test unless all exit 0."""
    for rank in range(nproc):
        (root / f"rank{rank}").mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", __file__,
         json.dumps(jobs)],
        cwd=root, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _worker(jobs: list[list[str]]) -> int:
    import torch

    torch.set_default_dtype(torch.float64)
    from unroll.cli import main
    from unroll.train.distributed import session

    os.chdir("rank" + os.environ["RANK"])
    with session("cpu"):
        for argv in jobs:
            code = main(argv)
            if code:
                return code
    return 0


if __name__ == "__main__":
    sys.exit(_worker(json.loads(sys.argv[1])))
