"""Score sentences, rerank n-best lists and continue a prompt with an exported unroll model,
using only NumPy, onnxruntime and the model's JSON sidecar (no torch).

    unroll export runs/ptb --out ptb.onnx                    # writes ptb.onnx and ptb.json
    python examples/onnx_score.py ptb.onnx score sentences.txt      # one sentence a line
    python examples/onnx_score.py ptb.onnx rank nbest.txt           # groups separated by blank lines
    python examples/onnx_score.py ptb.onnx continue "the company said" --tokens 20

Scores are natural-log probabilities, counted as ``unroll score`` counts them: each line is
tokenized as in training, with its end marker, read after the sidecar's ``start_tokens``, and
every token after those is predicted. Tokenizing uses unroll's own tokenizer when unroll is
installed (it is pure Python and imports no torch); without it, whitespace, character and
subword models (with the ``sentencepiece`` package) can be read (see ``tokenize_fallback``).

The model: inputs ``tokens [T, B]`` (int64) and one float32 tensor per state entry listed in the
sidecar (``h_l0``, ``c_l0``, ...: zeros to start, batch on axis 0); outputs the scores
(``log_probs [T, B, V]``) and the state after the last token (``h_l0_out``, ...).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


class Model:
    """An exported model and its sidecar."""

    def __init__(self, path: str, threads: int = 1):
        self.path = Path(path)
        self.side = json.loads(self.path.with_suffix(".json").read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.itos = self.side["vocab"]["itos"]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.unk = self.stoi.get("<unk>")
        self.tokenize = make_tokenizer(self.side, self.path.parent)
        if self.side["output"]["scores"] != "log_probs":
            raise SystemExit("this example reads log-probabilities; export without --logits")

    def zeros(self, batch: int) -> dict[str, np.ndarray]:
        return {s["input"]: np.zeros([batch if d == "batch" else d for d in s["shape"]], np.float32)
                for s in self.side["state"]}

    def run(self, tokens: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        names = [self.side["output"]["name"]] + [s["output"] for s in self.side["state"]]
        out = self.session.run(names, {"tokens": tokens.astype(np.int64), **state})
        return out[0], {s["input"]: x for s, x in zip(self.side["state"], out[1:])}

    def ids(self, tokens: list[str]) -> list[int]:
        if self.unk is None and any(t not in self.stoi for t in tokens):
            raise SystemExit(f"a token is not in the vocabulary and the model has no <unk>: {tokens}")
        return [self.stoi.get(t, self.unk) for t in tokens]


def make_tokenizer(side: dict, directory: Path):
    """``text, complete -> tokens``, exactly as training tokenized (unroll's TextSpec), if unroll is there."""
    try:
        from unroll.text import TextSpec
    except ImportError:
        return lambda text, complete=True: tokenize_fallback(side["text"], text, complete, directory)
    spec = TextSpec.from_dict(side["text"]).load_files(directory)
    return spec.tokenize


def tokenize_fallback(text_spec: dict, text: str, complete: bool = True, directory: Path = Path(".")) -> list[str]:
    """Without unroll: characters; or per line (with <bos>/<eos> as the spec says) whitespace
    words, or subword pieces of the exported tokenizer.model (needs the sentencepiece package)."""
    if text_spec["lower"]:
        text = text.lower()
    level = text_spec["level"]
    if level == "char" and text_spec["unit"] == "text":
        return list(text)
    if level in ("bpe", "unigram") and text_spec["unit"] == "line":
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=str(directory / "tokenizer.model"))
        split = lambda line: sp.encode(line, out_type=str) if line else []  # noqa: E731
    elif level == "whitespace" and text_spec["unit"] == "line":
        split = str.split
    else:
        raise SystemExit(f"tokenizing level {level!r} needs unroll installed (pip install unroll-lm)")
    tokens: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n")[: -1 if text.endswith("\n") else None]:
        tokens += ["<bos>"] * text_spec["bos"] + split(line) + ["<eos>"] * text_spec["eos"]
    if not complete and text_spec["eos"] and tokens:
        tokens.pop()
    return tokens


def score(model: Model, lines: list[str], batch_size: int = 32) -> list[dict]:
    """Each line's log-probability, token count and perplexity, scored in padded batches."""
    seqs = [model.ids(model.side["start_tokens"] + model.tokenize(line + model.side["line_end"])) for line in lines]
    results: list[dict] = [{} for _ in lines]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    for k in range(0, len(order), batch_size):
        rows = order[k:k + batch_size]
        T = max(len(seqs[i]) for i in rows)
        tokens = np.zeros((T, len(rows)), np.int64)  # trailing padding changes no earlier output
        for col, i in enumerate(rows):
            tokens[: len(seqs[i]), col] = seqs[i]
        log_probs, _ = model.run(tokens[:-1] if T > 1 else tokens, model.zeros(len(rows)))
        for col, i in enumerate(rows):
            n = len(seqs[i]) - 1
            lp = [float(log_probs[t, col, seqs[i][t + 1]]) for t in range(n)]
            total = sum(lp)
            results[i] = {"text": lines[i], "logprob": total, "count": n,
                          "perplexity": math.exp(-total / n) if n else None, "logprobs": lp}
    return results


def rank(model: Model, groups: list[list[str]], normalize: bool = False) -> list[list[tuple[int, dict]]]:
    """Each group's candidates, best first (highest log-probability, or per token)."""
    scores = iter(score(model, [c for g in groups for c in g]))
    key = (lambda s: s["logprob"] / s["count"] if s["count"] else -math.inf) if normalize else (lambda s: s["logprob"])
    return [sorted([(j, next(scores)) for j in range(len(g))], key=lambda js: -key(js[1])) for g in groups]


def continue_greedy(model: Model, prompt: str, max_tokens: int):
    """Yield the most probable next token (never <unk>, as unroll generate), one call per token,
    carrying the state (streaming)."""
    ids = model.ids(model.side["start_tokens"] + model.tokenize(prompt, complete=False))
    log_probs, state = model.run(np.array(ids, np.int64)[:, None], model.zeros(1))
    last = log_probs[-1, 0] if log_probs.ndim == 3 else log_probs[0]
    for _ in range(max_tokens):
        if model.unk is not None:
            last[model.unk] = -np.inf
        token = int(np.argmax(last))
        if model.itos[token] == "<eos>":
            return
        yield model.itos[token]
        log_probs, state = model.run(np.array([[token]], np.int64), state)
        last = log_probs[-1, 0] if log_probs.ndim == 3 else log_probs[0]


def groups_of(text: str) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            groups[-1].append(line)
        elif groups[-1]:
            groups.append([])
    return [g for g in groups if g]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="the exported .onnx file (its sidecar .json beside it)")
    p.add_argument("task", choices=["score", "rank", "continue"])
    p.add_argument("input", help="score/rank: a text file or - for stdin; continue: the prompt")
    p.add_argument("--normalize", action="store_true", help="rank by log-probability per token")
    p.add_argument("--tokens", type=int, default=20, help="continue: at most this many tokens")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    args = p.parse_args(argv)
    model = Model(args.model)
    if args.task == "continue":
        joiner = model.side["joiner"]
        print(args.input, end="", flush=True)
        for token in continue_greedy(model, args.input, args.tokens):
            if model.side["text"]["level"] in ("bpe", "unigram"):  # a subword piece marks its space with ▁
                token = token.replace("\u2581", " ")
            print(joiner + token if joiner else token, end="", flush=True)
        print()
        return 0
    text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text(encoding="utf-8")
    if args.task == "score":
        for s in score(model, [line for line in text.splitlines() if line.strip()]):
            print(json.dumps(s) if args.json else f"{s['logprob']:.6f}\t{s['count']}\t{s['text']}")
    else:
        for i, group in enumerate(rank(model, groups_of(text), args.normalize), 1):
            for r, (j, s) in enumerate(group, 1):
                row = {"group": i, "rank": r, "candidate": j + 1, **s}
                print(json.dumps(row) if args.json else f"{i}\t{r}\t{j + 1}\t{s['logprob']:.6f}\t{s['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
