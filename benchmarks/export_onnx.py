"""PyTorch fp32 vs ONNX fp32 vs ONNX int8 (onnxruntime), side by side in one run: PTB test
perplexity, file sizes and scoring speed at a fixed thread count.

For a trained word model (e.g. a PTB 2x650 LSTM), the run is exported with ``unroll export
--int8`` (its own checks included) into ``--out-dir``, then:

- perplexity of the test split, all three by unroll's protocol (``--batch-size`` columns,
  ``--bptt`` steps per call, the state carried; unroll.evaluate.stream);
- tokens/s scoring the first ``--speed-tokens`` test tokens at batch 1 and batch 16 in windows
  of ``--bptt`` (log-probabilities over the whole vocabulary included), and streaming at batch 1,
  one token per call (the generation case; PyTorch with oneDNN off for it, as unroll's engine
  steps). The best of ``--repeats`` runs. Threads: ``--threads`` for both torch and onnxruntime.

It prints a markdown table, the CPU model (lscpu), the date and the library versions.

    python benchmarks/export_onnx.py runs/ptb-650 --threads 1              # the timed run (the lead's)
    python benchmarks/export_onnx.py RUN --max-test-tokens 2000 --speed-tokens 300 --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from unroll.data import load_corpus
from unroll.evaluate import evaluate
from unroll.export.runtime import OnnxLM
from unroll.export.to_onnx import export_onnx
from unroll.use.engine import _without_onednn, load

from machine import cpu_model


def torch_scorer(model):
    """``(tokens [T, B], state) -> state``: forward and log-softmax, as scoring needs."""
    def run(tokens: np.ndarray, state):
        with torch.inference_mode():
            logits, state = model(torch.from_numpy(tokens), state)
            torch.log_softmax(logits, -1)
        return state
    return run


def onnx_scorer(lm: OnnxLM):
    def run(tokens: np.ndarray, state):
        return lm.run(tokens, state if state is not None else lm.init_state(tokens.shape[1]))[1]
    return run


def tokens_per_second(run, ids: np.ndarray, batch: int, window: int, repeats: int) -> float:
    n = len(ids) // batch
    data = np.ascontiguousarray(ids[: n * batch].reshape(batch, n).T)
    run(data[:window], None)  # warm-up: first-call allocations, kernel selection
    best = float("inf")
    for _ in range(repeats):
        state, start = None, time.perf_counter()
        for t in range(0, n, window):
            state = run(data[t:t + window], state)
        best = min(best, time.perf_counter() - start)
    return n * batch / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="a trained word model: checkpoint or training run directory")
    p.add_argument("--data", default="ptb", help="dataset whose test split is read (default ptb)")
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads (default 1)")
    p.add_argument("--batch-size", type=int, default=10, help="perplexity: columns (default 10)")
    p.add_argument("--bptt", type=int, default=35, help="steps per call (default 35)")
    p.add_argument("--max-test-tokens", type=int, help="perplexity on the first N test tokens only (smoke runs)")
    p.add_argument("--speed-tokens", type=int, default=20_000, help="test tokens per speed measurement")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out-dir", help="where the exported files go (default: a temporary directory)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    lm = load(args.run, device="cpu")
    corpus = load_corpus(args.data, spec=lm.spec, vocab=lm.vocab)
    test = corpus.splits["test"][: args.max_test_tokens]
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="unroll-onnx-bench-"))
    exported = export_onnx(args.run, out_dir / "model.onnx", int8=True, echo=print)
    fp32, int8 = (OnnxLM(path, threads=args.threads) for path in (exported.model, exported.int8))

    weights = sum(p.numel() * p.element_size() for p in lm.model.parameters())
    rows = [("PyTorch fp32 (eager)", evaluate(lm.model, test, args.batch_size, args.bptt)["ppl"], weights / 1e6,
             torch_scorer(lm.model)),
            ("ONNX fp32 (onnxruntime)", fp32.evaluate(test, args.batch_size, args.bptt)["ppl"],
             exported.model.stat().st_size / 1e6, onnx_scorer(fp32)),
            ("ONNX int8 (onnxruntime, dynamic)", int8.evaluate(test, args.batch_size, args.bptt)["ppl"],
             exported.int8.stat().st_size / 1e6, onnx_scorer(int8))]
    speed_ids = corpus.splits["test"][: args.speed_tokens]
    cfg = lm.model.cfg
    print(f"\n{cfg.num_layers}x{cfg.hidden_size} {cfg.cell}, emb {cfg.emb_size}, vocab {cfg.vocab_size}, "
          f"tied {cfg.tie_weights}; {args.run}; exporter {exported.exporter}, opset {exported.opset}")
    print(f"{cpu_model()}; {args.threads} thread(s); {datetime.date.today().isoformat()}; torch {torch.__version__}, "
          f"onnxruntime {__import__('onnxruntime').__version__}; test tokens {len(test)} (perplexity), "
          f"{len(speed_ids)} (speed), batch {args.batch_size}, bptt {args.bptt}\n")
    print("| model | test ppl | file MB | tok/s batch 1 | tok/s batch 16 | tok/s streaming batch 1 |")
    print("|---|---|---|---|---|---|")
    base = None
    for name, ppl, size, run in rows:
        b1 = tokens_per_second(run, speed_ids, 1, args.bptt, args.repeats)
        b16 = tokens_per_second(run, speed_ids, 16, args.bptt, args.repeats)
        with _without_onednn(name.startswith("PyTorch")):  # as unroll's engine steps (unroll.use.engine)
            stream = tokens_per_second(run, speed_ids[: max(args.speed_tokens // 10, 2)], 1, 1, args.repeats)
        base = base or (b1, b16, stream)
        ratio = lambda x, b: f"{x:,.0f} ({x / b:.2f}x)"  # noqa: E731
        print(f"| {name} | {ppl:.2f} | {size:.1f} | {ratio(b1, base[0])} | {ratio(b16, base[1])} | "
              f"{ratio(stream, base[2])} |")
    print("\nfile MB for PyTorch: its weights in memory (float32). Ratios are against PyTorch fp32 eager.")


if __name__ == "__main__":
    main()
