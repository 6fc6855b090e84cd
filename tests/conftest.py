"""Shared fixtures.

Tests that read real corpora use the local dataset mirror named by ``UNROLL_DATA_DIR`` (CI sets it
to ``../shared/data``); without one they are skipped, and nothing ever downloads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the same property cases every time (a submission's check must not depend on luck);
# elsewhere each run draws new ones, which is how new failures are found.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """The dataset mirror directory, or skip the test when none is configured."""
    value = os.environ.get("UNROLL_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("needs UNROLL_DATA_DIR pointing at a dataset mirror (CI uses ../shared/data)")
    return Path(value)


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory) -> Iterator[None]:
    """An empty cache before any fixture runs: session fixtures run first, so a module-scoped
    fixture that loads data (before the per-test cache below exists) still cannot fill ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNROLL_CACHE_DIR", str(tmp_path_factory.mktemp("session-cache")))
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch) -> None:
    """Every test gets an empty download cache, so no test depends on or fills ~/.cache."""
    monkeypatch.setenv("UNROLL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
