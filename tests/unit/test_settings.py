"""Settings: help text and older names live on the fields; presets load without torch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from unroll.classify_config import ClassifierConfig, ClassifyConfig
from unroll.config import ModelConfig, TrainConfig
from unroll.errors import UnrollError
from unroll.presets import CLASSIFY_PRESETS, PRESETS
from unroll.settings import canonical_names, field_aliases, field_help

TUTORIAL_NAMES = {"dim_proj": "emb_size", "n_words": "max_vocab", "maxlen": "max_length",
                  "valid_portion": "valid_fraction", "valid_batch_size": "eval_batch_size", "max_epochs": "epochs",
                  "valid_freq": "eval_every", "disp_freq": "log_every", "decay_c": "output_l2"}


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig, ClassifierConfig, ClassifyConfig])
def test_every_field_has_help(cls):
    assert [f.name for f in dataclasses.fields(cls) if not field_help(f)] == []


def test_the_tutorial_names_are_aliases_of_the_language_models():
    aliases = {a: f.name for cls in (ClassifierConfig, ClassifyConfig) for f in dataclasses.fields(cls)
               for a in field_aliases(f)}
    assert aliases == TUTORIAL_NAMES
    lm_names = {f.name for f in dataclasses.fields(ModelConfig)} | {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(TUTORIAL_NAMES.values()) - {"output_l2", "log_every", "valid_fraction", "max_length"} <= lm_names


def test_old_names_load_and_new_ones_win():
    old = {"n_words": 500, "maxlen": 40, "valid_portion": 0.1, "valid_batch_size": 8, "max_epochs": 3,
           "valid_freq": 5, "disp_freq": 2, "decay_c": 0.01}
    new = ClassifyConfig.from_dict({TUTORIAL_NAMES[k]: v for k, v in old.items()})
    assert ClassifyConfig.from_dict(old) == new
    assert ClassifierConfig.from_dict({"vocab_size": 9, "num_classes": 2, "dim_proj": 12}).emb_size == 12
    # a run saved under the old names, resumed with a new one: the new value counts
    assert canonical_names(ClassifyConfig, {"max_epochs": 3, "epochs": 7}) == {"epochs": 7}
    with pytest.raises(UnrollError, match="epoch"):
        ClassifyConfig.from_dict({"epoch": 3})


def test_presets_build_and_import_without_torch():
    for preset in PRESETS.values():
        ModelConfig(vocab_size=10, **preset.model)
    for preset in CLASSIFY_PRESETS.values():
        ClassifierConfig(vocab_size=10, num_classes=2, **preset.model)
    code = "import sys, unroll.presets, unroll.cli.common; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
