"""How long loading a corpus takes (read, tokenize, build the vocabulary, encode).

    UNROLL_DATA_DIR=MIRROR python benchmarks/data_load.py [ptb|wikitext2|tinyshakespeare ...]

Prints one line per corpus: seconds and tokens. PTB train should load well under 2 s.
"""

import sys
import time

from unroll.data import load_corpus


def main(names: list[str]) -> None:
    for name in names or ["ptb"]:
        t0 = time.perf_counter()
        corpus = load_corpus(name)
        seconds = time.perf_counter() - t0
        sizes = ", ".join(f"{k} {len(v):,}" for k, v in corpus.splits.items())
        print(f"{name}: {seconds:.2f} s ({sizes}; vocabulary {len(corpus.vocab):,})")


if __name__ == "__main__":
    main(sys.argv[1:])
