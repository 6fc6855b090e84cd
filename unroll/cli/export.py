"""``unroll export``: a checkpoint as an ONNX model with explicit state, checked with onnxruntime."""

from __future__ import annotations

import argparse

from unroll.cli.common import add_last_flag, run_directory

FORMATS = ("onnx",)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a language model to ONNX (state as inputs and outputs; --int8), checked with onnxruntime",
        description="Export DIR (a checkpoint or a training run: its best/ checkpoint) as an ONNX model taking "
        "token ids [T, B] and the recurrent state, one tensor per layer, and returning log-probabilities and the "
        "new state; time and batch are dynamic. Beside it, a JSON sidecar (FILE with .json) holds the vocabulary, "
        "the text settings and the names and shapes of the state. Before anything is written, onnxruntime must "
        "give PyTorch's numbers (rtol 1e-4, atol 1e-5) at other lengths and batch sizes and over 50 single-token "
        "calls; otherwise nothing is written. See docs/export.md.",
    )
    p.add_argument("dir", metavar="DIR", help="checkpoint directory or training run directory")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (the only one for now)")
    p.add_argument("--out", metavar="FILE", help="where to write the model, ending in .onnx (default: DIR/model.onnx)")
    p.add_argument("--int8", action="store_true", help="also write FILE.int8.onnx: onnxruntime's dynamic int8 "
                   "quantization, checked by perplexity against the fp32 model")
    p.add_argument("--logits", action="store_true", help="output logits instead of log-probabilities")
    p.add_argument("--last-only", action="store_true", help="output only the last step's scores [B, V] "
                   "(streaming generation), not [T, B, V]")
    p.add_argument("--exporter", choices=["auto", "legacy", "dynamo"], default="auto",
                   help="torch.onnx exporter; auto: legacy for lstm/gru/rnn (real LSTM/GRU/RNN operators), "
                   "dynamo for the others (see docs/export.md)")
    add_last_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from unroll.export.to_onnx import default_out, export_onnx

    out = args.out or default_out(args.dir)
    result = export_onnx(run_directory(args.dir, args.last), out, int8=args.int8,
                         scores="logits" if args.logits else "log_probs", last_only=args.last_only,
                         exporter=args.exporter, echo=print)
    for f in result.files:
        if f.suffix == ".onnx":
            print(f"wrote {f} ({f.stat().st_size / 1e6:.2f} MB)")
    print(f"exported {result.model} with the {result.exporter} exporter, opset {result.opset}; "
          f"sidecar {result.model.with_suffix('.json')}")
    return 0
