"""Write the tiny checkpoints in ``tests/data/legacy/`` and the outputs they must keep giving.

    PYTHONPATH=/path/to/old/checkout python tests/support/make_legacy_checkpoints.py tests/data/legacy

Run once with an old unroll on the path (the one whose format the files preserve):
``tests/unit/test_legacy_checkpoints.py`` loads them with the current code and checks that the
log-probabilities and class probabilities are those recorded here, to float32 precision.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from unroll.classify_config import ClassifierConfig
from unroll.config import ModelConfig
from unroll.models import LanguageModel, save_model
from unroll.models.classifier import Classifier, save_classifier
from unroll.text import TextSpec, Vocab

WORDS = Vocab(["<unk>", "<eos>", *"the cat sat on mat a dog ran , .".split()])
SPEC = TextSpec(level="whitespace", unit="line", eos=True)
INPUTS = [[2, 3, 4, 5, 2, 6, 1]]  # "the cat sat on the mat <eos>", one sequence [B=1, T]
LM_CELLS = {"lm_lstm": dict(cell="lstm"), "lm_qrnn_window2": dict(cell="qrnn", qrnn_window=2),
            "lm_gru_tied": dict(cell="gru", tie_weights=True, emb_size=6)}


def main(root: Path) -> None:
    expected: dict[str, list] = {}
    x = torch.tensor(INPUTS).T  # [T, B]
    for name, settings in LM_CELLS.items():
        cfg = ModelConfig(vocab_size=len(WORDS), **{"emb_size": 8, "hidden_size": 8, "num_layers": 2,
                                                     "init_scale": 0.5, **settings})
        torch.manual_seed(0)
        model = LanguageModel(cfg).eval()
        save_model(model, root / name, WORDS.to_dict(), extra={"text": SPEC.to_dict()})
        with torch.no_grad():
            logits, _ = model(x)
        expected[name] = torch.log_softmax(logits.float(), -1)[:, 0].tolist()
    torch.manual_seed(0)
    clf = Classifier(ClassifierConfig.from_dict(  # from_dict: the tutorial's name loads before and after the rename
        {"vocab_size": len(WORDS), "num_classes": 2, "dim_proj": 8, "pooling": "mean"})).eval()
    save_classifier(clf, root / "classifier", WORDS, ["neg", "pos"], SPEC)
    with torch.no_grad():
        expected["classifier"] = torch.softmax(clf(x, torch.tensor([x.shape[0]])).float(), -1).tolist()
    (root / "expected.json").write_text(json.dumps({"inputs": INPUTS, "outputs": expected}, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
