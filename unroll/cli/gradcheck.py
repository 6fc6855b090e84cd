"""``unroll gradcheck``: check the reference engine's BPTT against finite differences.

Builds a tiny random model and batch (padded, with a mask and a nonzero initial state), then
prints the largest relative error per parameter for two objectives: the loss, and a random
weighted sum of all outputs. Exits 0 only when every error is below 1e-6 (float64).
"""

from __future__ import annotations

import argparse
import json

from unroll import cells

TOLERANCE = 1e-6
ALIASES = {"rnn": "rnn_tanh"}  # the tutorial's name for the tanh RNN


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gradcheck",
        help="check the NumPy engine's gradients against finite differences",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--model", choices=sorted(cells.names() + list(ALIASES)), default="lstm",
                   help="cell type (default lstm)")
    p.add_argument("--layers", type=int, default=1, help="number of recurrent layers (default 1)")
    p.add_argument("--truncate", type=int, default=None, metavar="K",
                   help="truncated BPTT: back through K steps, as the tutorial's bptt_truncate (default: full)")
    p.add_argument("--tied", action="store_true", help="tie the decoder to the embedding")
    p.add_argument("--emb-size", type=int, default=5, metavar="E",
                   help="embedding width (default 5, the hidden size; tied with another: through a projection)")
    p.add_argument("--window", type=int, default=1, metavar="W",
                   help="qrnn: the first layer reads W inputs per step (default 1)")
    p.add_argument("--cutoffs", metavar="N,N,...",
                   help="an adaptive softmax with these cutoffs (the vocabulary has 11 tokens; e.g. 3,7) and div-value 2")
    p.add_argument("--steps", type=int, default=6, help="sequence length T (default 6)")
    p.add_argument("--batch-size", type=int, default=3, help="batch size B (default 3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from unroll.config import ModelConfig
    from unroll.errors import UnrollError
    from unroll.reference.gradcheck import check_gradients, random_problem
    from unroll.reference.model import LanguageModel

    if min(args.layers, args.steps, args.batch_size, args.emb_size) < 1:
        raise UnrollError("--layers, --steps, --batch-size and --emb-size must be positive")
    if args.truncate is not None and args.truncate < 0:
        raise UnrollError(f"--truncate must be >= 0, got {args.truncate}")
    if args.seed < 0:
        raise UnrollError(f"--seed must be >= 0, got {args.seed}")
    try:
        cutoffs = tuple(int(c) for c in args.cutoffs.split(",")) if args.cutoffs else ()
    except ValueError:
        raise UnrollError(f"--cutoffs must be integers separated by commas, got {args.cutoffs!r}") from None
    cfg = ModelConfig(
        vocab_size=11, cell=ALIASES.get(args.model, args.model), emb_size=args.emb_size, hidden_size=5, num_layers=args.layers,
        tie_weights=args.tied, init="uniform", init_scale=0.5, qrnn_window=args.window,
        adaptive_softmax=bool(cutoffs), cutoffs=cutoffs, div_value=2.0,
    )
    rng = np.random.default_rng(args.seed)
    model = LanguageModel(cfg, dtype=np.float64, seed=args.seed)
    inputs, targets, mask, state = random_problem(model, args.steps, args.batch_size, rng)
    errors = {
        objective: check_gradients(model, inputs, targets, mask, state, args.truncate, objective, rng=rng)
        for objective in ("loss", "outputs")
    }
    worst = max(e for per in errors.values() for e in per.values())
    ok = worst < TOLERANCE
    if args.json:
        print(json.dumps({"model": cfg.cell, "layers": args.layers, "window": args.window, "truncate": args.truncate,
                          "tied": args.tied, "emb_size": args.emb_size, "cutoffs": list(cutoffs), "tolerance": TOLERANCE,
                          "max_relative_error": errors, "worst": worst, "ok": ok}, indent=2))
    else:
        bptt = "full BPTT" if args.truncate is None else f"BPTT truncated to {args.truncate}"
        window = f", window {args.window}" if args.window > 1 else ""
        tied = (", tied through a projection" if cfg.projects else ", tied") if args.tied else ""
        tied += f", adaptive softmax (cutoffs {args.cutoffs})" if cutoffs else ""
        print(f"{cfg.cell}, {args.layers} layer(s){window}, {bptt}{tied}: "
              "max relative error per parameter")
        width = max(20, *map(len, errors["loss"]))
        print(f"{'parameter':<{width}} {'loss':>10} {'outputs':>10}")
        for name in errors["loss"]:
            print(f"{name:<{width}} {errors['loss'][name]:>10.2e} {errors['outputs'][name]:>10.2e}")
        print(f"{'PASS' if ok else 'FAIL'}: worst {worst:.2e} (tolerance {TOLERANCE:.0e})")
    return 0 if ok else 1
