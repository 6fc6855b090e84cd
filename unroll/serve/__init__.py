"""``unroll serve``: a local playground page and JSON API to generate, score and compare text.

    from unroll.serve import create_app, Limits
    app = create_app({"ptb": load("runs/ptb")}, Limits(max_tokens=200))   # a Starlette app
    uvicorn.run(app, host="127.0.0.1", port=8000)

Needs the ``serve`` extra (Starlette and uvicorn): ``pip install "unroll-lm[serve]"``.
"""

from unroll.serve.app import create_app
from unroll.serve.params import Limits

__all__ = ["Limits", "create_app"]
