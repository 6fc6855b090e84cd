"""Run ``unroll`` commands under torchrun for the distributed tests (gloo on the CPU, float64).

``torchrun(root, jobs)`` starts one launch (it costs seconds; tiny runs don't) in which every
rank runs each argv list of ``jobs`` in turn, inside one process group, in float64 (unless told
otherwise), in the folder ``root/rank<RANK>/``: rank 1 writing anything would show there.
torchrun runs this file as its worker script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DTYPE_ENV = "UNROLL_TEST_DTYPE"  # the workers' default dtype


def torchrun(root: Path, jobs: list[list[str]], nproc: int = 2, dtype: str = "float64") -> subprocess.CompletedProcess:
    """Run ``jobs`` on ``nproc`` ranks (one thread each); fails the test unless all exit 0."""
    proc = subprocess.run(_argv(root, jobs, nproc), cwd=root, env=_env(dtype), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def start_torchrun(root: Path, jobs: list[list[str]], log: Path, nproc: int = 2, max_restarts: int = 0,
                   dtype: str = "float64") -> subprocess.Popen:
    """Start ``jobs`` on ``nproc`` ranks in the background; torchrun restarts every worker up to
    ``max_restarts`` times when one fails, as an elastic job does."""
    argv = _argv(root, jobs, nproc)
    argv.insert(argv.index("--standalone"), f"--max-restarts={max_restarts}")
    with open(log, "w") as out:
        return subprocess.Popen(argv, cwd=root, env=_env(dtype), stdout=out, stderr=subprocess.STDOUT)


def worker_pids(launcher: int) -> dict[int, int]:
    """The running workers under a torchrun process, by their RANK (read from /proc)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        rank = next((e[5:] for e in env if e.startswith(b"RANK=")), None)
        if rank is not None and _descends(ppid, launcher):
            found[int(rank)] = int(proc.name)
    return found


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


def _argv(root: Path, jobs: list[list[str]], nproc: int) -> list[str]:
    for rank in range(nproc):
        (root / f"rank{rank}").mkdir(exist_ok=True)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", __file__,
            json.dumps(jobs)]


def _env(dtype: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", DTYPE_ENV: dtype}


def _worker(jobs: list[list[str]]) -> int:
    import torch

    torch.set_default_dtype(getattr(torch, os.environ[DTYPE_ENV]))
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
