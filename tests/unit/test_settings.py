"""Settings: help text and older names live on the fields; presets load without torch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fuzz import cases
from unroll.classify_config import ClassifierConfig, ClassifyConfig
from unroll.config import ModelConfig, TrainConfig
from unroll.errors import UnrollError
from unroll.presets import CLASSIFY_PRESETS, PRESETS
from unroll.settings import canonical_names, field_aliases, field_help
from unroll.text import TextSpec

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


# A valid base for each class (the fields without a default), so one bad field is what fails.
BASES = {ModelConfig: {"vocab_size": 10}, TrainConfig: {}, ClassifierConfig: {"vocab_size": 10, "num_classes": 2},
         ClassifyConfig: {}, TextSpec: {}}
# no subnormal floats: once torch has set flush-to-zero (another test's doing), hypothesis refuses them
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_subnormal=False),
    st.text(max_size=12),
    st.lists(st.one_of(st.floats(-2, 2, allow_subnormal=False), st.integers(-3, 3), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=cases(400), deadline=None)
@given(data=st.data())
def test_any_json_value_for_any_field_loads_or_is_one_unroll_error(data):
    cls = data.draw(st.sampled_from(list(BASES)))
    name = data.draw(st.sampled_from([f.name for f in dataclasses.fields(cls)]))
    try:
        cls.from_dict({**BASES[cls], name: data.draw(JSON_VALUES)})
    except UnrollError as e:
        assert "\n" not in str(e) and name in str(e)


@pytest.mark.parametrize("cls, d, message", [
    (ModelConfig, {"vocab_size": 10, "hidden_size": "650"}, "hidden_size must be an integer, got '650'"),
    (ModelConfig, {"vocab_size": 10, "hidden_size": True}, "hidden_size must be an integer, got True"),
    (ModelConfig, {"vocab_size": 10, "tie_weights": 1}, "tie_weights must be true or false, got 1"),
    (ModelConfig, {"vocab_size": 10, "init_scale": 0}, "init_scale must be positive, got 0"),
    (ModelConfig, {"vocab_size": 10, "input_dropout": "x"}, "input_dropout must be a finite number or none, got 'x'"),
    (TrainConfig, {"betas": [0.9]}, "betas must be a list of 2 numbers, got [0.9]"),
    (TrainConfig, {"betas": [1.5, 0.9]}, "betas must be in [0, 1), got 1.5"),
    (TrainConfig, {"lr": float("nan")}, "lr must be a finite number, got nan"),
    (TrainConfig, {"lr_decay": 0}, "lr_decay must be in (0, 1], got 0"),
    (TrainConfig, {"momentum": 1.0}, "momentum must be in [0, 1), got 1.0"),
    (TrainConfig, {"min_lr": -1}, "min_lr must be at least 0, got -1"),
    (TrainConfig, {"warmup_steps": -1}, "warmup_steps must be at least 0, got -1"),
    (TrainConfig, {"max_vocab": 1}, "max_vocab must be at least 2, got 1"),
    (TrainConfig, {"nonmono": 0}, "nonmono must be at least 1, got 0"),
    (TrainConfig, {"seed": -1}, "seed must be in [0, 4294967295], got -1"),
    (ClassifierConfig, {"vocab_size": 10, "num_classes": 1}, "num_classes must be at least 2, got 1"),
    (ClassifyConfig, {"max_steps": 0}, "max_steps must be at least 1, got 0"),
    (ClassifyConfig, {"data": ["imdb"]}, "data must be a string, got ['imdb']"),
])
def test_a_bad_field_is_one_line_naming_it_the_value_and_what_is_allowed(cls, d, message):
    with pytest.raises(UnrollError) as e:
        cls.from_dict(d)
    assert str(e.value) == message


def test_ints_are_numbers_and_json_lists_are_tuples():
    cfg = TrainConfig.from_dict({"lr": 1, "betas": [0, 0.5]})
    assert cfg.lr == 1 and cfg.betas == (0, 0.5)
    assert ModelConfig.from_dict({"vocab_size": 10, "input_dropout": None}).input_dropout is None
