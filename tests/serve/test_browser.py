"""The playground page in a real headless Chromium: generate streams text in, Stop stops it, score
colours the tokens and shows a tooltip of alternatives, compare shows differences.

Playwright drives the system's Chromium (Debian's ``chromium``, which the README's test command
installs); it never downloads a browser. Without one the test is skipped, saying so. The
screenshots go to ``$UNROLL_TEST_ARTIFACTS`` (default ``test-artifacts/`` in the repository).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("starlette", reason="needs the serve extra (pip install 'unroll-lm[serve]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright's Python package (the test extra)")

from unroll.serve import Limits, create_app  # noqa: E402
from unroll.use.generate import generate  # noqa: E402
from tests.support.server import serving, slowed, wait_until_idle  # noqa: E402
from tests.support.tiny_models import char_lm, word_lm  # noqa: E402

ARTIFACTS = Path(os.environ.get("UNROLL_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


def system_chromium() -> str | None:
    """The Chromium binary itself (Debian's /usr/bin/chromium is a wrapper script around it)."""
    for candidate in ("/usr/lib/chromium/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def page():
    executable = system_chromium()
    if executable is None:
        pytest.skip("no system Chromium: install Debian's chromium package (apt-get install chromium), "
                    "as the README's test command does")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1100, "height": 800})
        browser.close()


@pytest.fixture(scope="module")
def models():
    return {"words": word_lm(dtype=torch.float64), "chars": char_lm(dtype=torch.float64),
            "words2": word_lm(dtype=torch.float64, seed=1)}


def test_generate_score_and_compare_in_the_browser(page, models):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serving(create_app(models, Limits())) as url:
        page.goto(url)
        sync_api.expect(page.locator("#models-line")).to_contain_text("words: lstm 2\u00d78")

        page.fill("#gen-prime", "the cat")
        page.fill("#gen-seed", "3")
        page.fill("#gen-max-tokens", "25")
        page.click("#gen-go")
        sync_api.expect(page.locator("#gen-status")).to_contain_text("seed 3", timeout=10_000)
        expect = generate(models["words"], "the cat", seed=3, max_tokens=25)[0]
        assert page.inner_text("#gen-out") == expect
        assert page.inner_text("#gen-out .prime") == "the cat"
        page.screenshot(path=str(ARTIFACTS / "playground-generate.png"))

        page.click("#tab-score")
        page.fill("#score-text", "the cat sat on the mat .\na dog ran")
        page.click("#score-go")
        tokens = page.locator("#score-out .t")
        sync_api.expect(tokens).to_have_count(7 + 1 + 3 + 1)  # each line's words and its <eos>
        assert tokens.first.inner_text() == "the"
        assert tokens.first.evaluate("e => getComputedStyle(e).backgroundColor").startswith("rgb(")
        tokens.nth(1).hover()
        tip = page.locator("#tip")
        sync_api.expect(tip).to_be_visible()
        sync_api.expect(tip).to_contain_text("cat: p = ")
        sync_api.expect(tip.locator("tr")).to_have_count(5)
        page.screenshot(path=str(ARTIFACTS / "playground-score.png"))

        page.click("#tab-compare")
        page.select_option("#cmp-b", "words2")
        page.fill("#cmp-text", "the cat sat")
        page.click("#cmp-go")
        sync_api.expect(page.locator("#cmp-out .t")).to_have_count(4)
        sync_api.expect(page.locator("#cmp-out .head")).to_contain_text("B \u2212 A")
        page.screenshot(path=str(ARTIFACTS / "playground-compare.png"))


def test_stop_ends_the_generation_on_the_server(page):
    lm, steps = slowed(word_lm(), 0.01)
    app = create_app({"words": lm}, Limits(max_tokens=1000))
    with serving(app) as url:
        page.goto(url)
        page.fill("#gen-max-tokens", "1000")
        page.fill("#gen-seed", "0")
        page.uncheck("#gen-stop-eos")
        page.click("#gen-go")
        # Counted, not waited on as visible: a sampled <eos> is a line break, an empty-looking span.
        page.wait_for_function("() => document.querySelectorAll('#gen-out span').length > 5")
        page.click("#gen-stop")
        sync_api.expect(page.locator("#gen-status")).to_have_text("stopped")
        wait_until_idle(app)
        assert app.state.active[0] == 0, "the generation still counts as streaming"
        stopped_at = steps[0]
        page.wait_for_timeout(300)
        assert steps[0] == stopped_at < 900, f"{steps[0]} steps: the generation went on after Stop"
