"""The playground API as an OpenAPI 3.1 document (``GET /api/openapi.json``).

Request bodies come from the same parameter tables that check requests (:mod:`unroll.serve.params`),
so the bounds written here are the ones enforced.
"""

from __future__ import annotations

from typing import Any

from unroll import __version__
from unroll.serve import params as P

ERROR = {"$ref": "#/components/schemas/Error"}


def document(limits: P.Limits) -> dict[str, Any]:
    refusals = {
        "413": _error(f"a text or prime over {limits.max_chars:,} characters, or a body over "
                      f"{limits.max_body_bytes:,} bytes"),
        "415": _error("the body is not sent as application/json"),
        "422": _error("a bad parameter (type, range, unknown name or model), or text the model cannot read "
                      "(a character never seen in training)"),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "unroll playground", "version": __version__,
                 "description": "Generate, score and compare text with the loaded language models."},
        "paths": {
            "/api/models": {"get": {
                "summary": "the loaded models, the request limits and the surprisal scale",
                "responses": {"200": _json("models, limits, red_bits (surprisal at which a token is fully "
                                           "red), generations streaming now", _object({
                                               "models": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}},
                                               "limits": {"type": "object"}, "red_bits": {"type": "number"},
                                               "generations": {"type": "object"}}))},
            }},
            "/api/generate": {"post": {
                "summary": "sample a continuation of the prime, streamed as server-sent events",
                "description": "`event: piece` with `{\"text\"}` for each piece (the first is the prime), then "
                               "`event: done` with `{\"stopped\": \"eos\"|\"max_tokens\", \"tokens\", \"seed\"}`. "
                               "Closing the connection stops the generation.",
                "requestBody": _body(P.generate_params(limits)),
                "responses": {"200": {"description": "the event stream",
                                      "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                              **refusals,
                              "429": _error(f"{limits.max_generations} generations are already streaming")},
            }},
            "/api/score": {"post": {
                "summary": "log-probability of each line and of each token, with surprisal colours and the "
                           "most likely alternatives at every position",
                "requestBody": _body(P.score_params(limits)),
                "responses": {"200": _json("per line and in total", {"$ref": "#/components/schemas/Scores"}),
                              **refusals},
            }},
            "/api/compare": {"post": {
                "summary": "two models on the same lines: per-line totals, and per-token differences "
                           "(B - A) where both read a line as the same tokens",
                "requestBody": _body(P.compare_params(limits)),
                "responses": {"200": _json("per line; `message` says where the tokenizations differ",
                                           {"type": "object"}), **refusals},
            }},
            "/api/openapi.json": {"get": {"summary": "this document",
                                          "responses": {"200": _json("OpenAPI 3.1", {"type": "object"})}}},
        },
        "components": {"schemas": SCHEMAS},
    }


def _body(params: tuple[P.Param, ...]) -> dict[str, Any]:
    schema = _object({p.name: p.schema() for p in params})
    schema["required"] = [p.name for p in params if p.default is P.REQUIRED]
    schema["additionalProperties"] = False
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, ERROR)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


_NUMBER, _INT, _STR = {"type": "number"}, {"type": "integer"}, {"type": "string"}
_TOTALS = {"logprob": _NUMBER, "count": _INT, "perplexity": {"type": ["number", "null"]}}
SCHEMAS: dict[str, Any] = {
    "Error": {**_object({"error": _STR}), "required": ["error"]},
    "Model": _object({"name": _STR, "engine": _STR, "level": _STR, "joiner": _STR, "vocab_size": _INT,
                      "cell": _STR, "num_layers": _INT, "hidden_size": _INT}),
    "Token": _object({
        "token": _STR, "logprob": {**_NUMBER, "description": "natural log of its probability given all before it"},
        "prob": _NUMBER, "bits": {**_NUMBER, "description": "surprisal, -log2 p"},
        "colour": {**_STR, "description": "CSS background on the scale of `unroll score --html`"},
        "alternatives": {"type": "array", "description": "the most likely tokens at this position, most likely first",
                         "items": _object({"token": _STR, "prob": _NUMBER})}}),
    "Scores": _object({
        "model": _STR, "joiner": _STR, **_TOTALS,
        "sentences": {"type": "array", "items": _object({
            "line": _INT, "text": _STR, **_TOTALS, "unk": _INT,
            "context": {"type": "array", "items": _STR, "description": "tokens given first, not predicted"},
            "tokens": {"type": "array", "items": {"$ref": "#/components/schemas/Token"}}})}}),
}
