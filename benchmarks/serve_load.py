"""A short load test of ``unroll serve`` on loopback: N score requests from C concurrent clients.

The server is the real command (``unroll serve`` in its own process) on a model of ptb-small's
size (2x200 LSTM, 10,000 words; random weights: the speed is the same), saved to a temporary
directory. Each request scores one PTB test sentence with its top-5 alternatives at every
token. Prints one JSON line: requests answered, errors, requests/s and latency percentiles.
Needs PTB in the mirror (``UNROLL_DATA_DIR``) or the download cache, and the serve extra.

    python benchmarks/serve_load.py                          # 200 requests, 8 clients
    python benchmarks/serve_load.py --requests 20 --clients 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import numpy as np
import torch

from unroll.config import ModelConfig
from unroll.data import load_corpus
from unroll.models import LanguageModel, save_model
from unroll.presets import PRESETS


def start_server(directory: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "unroll", "serve", str(directory), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("unroll playground: "):
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, line.split()[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--top", type=int, default=5, help="alternatives per token")
    args = p.parse_args()
    corpus = load_corpus("ptb")
    lines = [corpus.text.decode(ids, corpus.vocab).rstrip("\n") for ids in corpus.sentences("test")]
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=len(corpus.vocab), **PRESETS["ptb-small"].model))
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, Path(tmp), corpus.vocab, extra={"text": corpus.text.to_dict()})
        proc, url = start_server(Path(tmp))
        try:
            with httpx.Client(timeout=60) as warm:
                warm.post(url + "api/score", json={"text": lines[0], "top": args.top}).raise_for_status()

            def one(i: int) -> tuple[float, int]:
                with httpx.Client(timeout=60) as client:
                    start = time.perf_counter()
                    r = client.post(url + "api/score", json={"text": lines[i % len(lines)], "top": args.top})
                    return time.perf_counter() - start, r.status_code

            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                results = list(pool.map(one, range(args.requests)))
            seconds = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(30)
    latency = np.array([t for t, _ in results]) * 1000
    errors = sum(code != 200 for _, code in results)
    print(json.dumps({
        "requests": args.requests, "clients": args.clients, "answered": len(results), "errors": errors,
        "seconds": round(seconds, 2), "requests_per_s": round(args.requests / seconds, 1),
        "latency_ms": {f"p{q}": round(float(np.percentile(latency, q)), 1) for q in (50, 90, 99)}
        | {"max": round(float(latency.max()), 1)},
        "cpu": _cpu(), "threads": os.cpu_count(),
    }))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
