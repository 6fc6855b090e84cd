"""Per-token surprisal as colour, so a person can see where the model is surprised.

Surprisal is ``-log2 p`` in bits: 0 for a certain token, 1 for a coin flip, 13.3 for one word in
10,000 drawn at random. One fixed scale for every model and sentence (green 0 bits, yellow ~5,
red from 12), so colours compare across lines and models. Tokens are shown on a coloured
background (a space is visible too); the context given before the first predicted token is grey.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from unroll.use.score import SentenceScore

LN2 = math.log(2.0)
RED_BITS = 12.0  # surprisal at and above which a token is fully red
# 256-colour terminal backgrounds from green to red and the bits at which each one ends
ANSI_STEPS = ((1.0, 46), (2.5, 118), (4.0, 226), (6.0, 214), (9.0, 208), (math.inf, 196))
RESET = "\x1b[0m"


def bits(logprob: float) -> float:
    """Surprisal in bits of a token with natural-log probability ``logprob``."""
    return -logprob / LN2


def shown(token: str) -> str:
    """A token as it is displayed: line breaks and tabs as visible symbols."""
    return token.replace("\n", "\u23ce").replace("\t", "\u21e5")


def ansi_line(s: SentenceScore, joiner: str) -> str:
    """The sentence with each predicted token on a background coloured by its surprisal."""
    parts = [f"\x1b[90m{shown(t)}{RESET}" for t in s.context]
    for token, lp in zip(s.tokens, s.logprobs):
        colour = next(c for limit, c in ANSI_STEPS if bits(lp) < limit)
        parts.append(f"\x1b[48;5;{colour}m\x1b[30m{shown(token)}{RESET}")
    return joiner.join(parts)


def ansi_legend() -> str:
    lo = 0.0
    cells = []
    for limit, colour in ANSI_STEPS:
        label = f"{lo:g}-{limit:g}" if math.isfinite(limit) else f">{lo:g}"
        cells.append(f"\x1b[48;5;{colour}m\x1b[30m {label} {RESET}")
        lo = limit
    return "surprisal (bits): " + "".join(cells)


def css_colour(b: float) -> str:
    """The background of a token with surprisal ``b`` bits (``score --html`` and ``unroll serve``)."""
    hue = 120.0 * (1.0 - min(b, RED_BITS) / RED_BITS)  # 120 green -> 60 yellow -> 0 red
    return f"hsl({hue:.0f}, 85%, 72%)"


def html_page(scores: Sequence[SentenceScore], labels: Sequence[str], joiner: str, title: str) -> str:
    """A self-contained HTML page (no scripts, no external files): one block per sentence with
    its label, log-probability and perplexity; every token's bits and probability on hover."""
    blocks = []
    for s, label in zip(scores, labels):
        ppl = f"{s.perplexity:.2f}" if s.perplexity is not None else "n/a"
        head = (f"{html.escape(label)} &middot; log-prob {s.logprob:.3f} &middot; {s.count} tokens "
                f"&middot; perplexity {ppl}")
        spans = [f'<span class="ctx" title="context">{html.escape(shown(t))}</span>' for t in s.context]
        for token, lp in zip(s.tokens, s.logprobs):
            b = bits(lp)
            tip = f"{token!r}: {b:.2f} bits, p = {math.exp(lp):.4g}"
            spans.append(f'<span class="t" style="background:{css_colour(b)}" title="{html.escape(tip)}">'
                         f"{html.escape(shown(token))}</span>")
        blocks.append(f'<div class="s"><div class="h">{head}</div><div class="x">{html.escape(joiner).join(spans)}'
                      f"</div></div>")
    stops = ", ".join(f"{css_colour(RED_BITS * k / 4)} {25 * k}%" for k in range(5))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 60em; color: #222; }}
.s {{ margin: 1em 0; }}
.h {{ color: #666; font-size: 85%; margin-bottom: .2em; }}
.x {{ font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.9; }}
.t {{ border-radius: 3px; padding: 1px 1px; }}
.ctx {{ color: #999; }}
.legend {{ display: inline-block; width: 20em; height: 1em; vertical-align: middle;
          background: linear-gradient(to right, {stops}); }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Surprisal per token: 0 bits <span class="legend"></span> {RED_BITS:g}+ bits
(hover over a token for its bits and probability).</p>
{chr(10).join(blocks)}
</body></html>
"""
