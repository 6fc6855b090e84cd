"""The playground API: the same answers as the Python API, refusals with a status and a message,
bounds, concurrent requests equal to sequential ones, and a client that leaves stops its generation."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest
import torch

pytest.importorskip("starlette", reason="needs the serve extra (pip install 'unroll-lm[serve]')")
from starlette.testclient import TestClient  # noqa: E402

from unroll.serve import Limits, create_app  # noqa: E402
from unroll.use.alternatives import alternatives  # noqa: E402
from unroll.use.engine import load  # noqa: E402
from unroll.use.generate import generate  # noqa: E402
from unroll.use.score import score  # noqa: E402
from tests.support.server import serving, slowed, wait_until_idle  # noqa: E402
from tests.support.tiny_models import char_lm, save, word_lm  # noqa: E402


@pytest.fixture(scope="module")
def models():
    return {"words": word_lm(dtype=torch.float64), "chars": char_lm(dtype=torch.float64),
            "words2": word_lm(dtype=torch.float64, seed=1)}


@pytest.fixture(scope="module")
def client(models):
    return TestClient(create_app(models, Limits(max_chars=200, max_tokens=50, max_generations=2)))


def events(text: str) -> list[tuple[str, dict]]:
    """An SSE body as (event name, data) pairs."""
    out = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((fields["event"], json.loads(fields["data"])))
    return out


def generated(client_or_url, **body) -> tuple[str, dict]:
    if isinstance(client_or_url, str):
        r = httpx.post(client_or_url + "/api/generate", json=body, timeout=30)
    else:
        r = client_or_url.post("/api/generate", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    evs = events(r.text)
    assert [name for name, _ in evs[:-1]] == ["piece"] * (len(evs) - 1) and evs[-1][0] == "done"
    return "".join(d["text"] for _, d in evs[:-1]), evs[-1][1]


def test_models_lists_what_is_loaded_with_the_limits(client):
    r = client.get("/api/models").json()
    assert [m["name"] for m in r["models"]] == ["words", "chars", "words2"]
    assert r["models"][0] | {"level": "whitespace", "joiner": " ", "vocab_size": 12, "cell": "lstm"} == r["models"][0]
    assert r["limits"]["max_tokens"] == 50 and r["red_bits"] == 12


def test_the_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    assert "<script src" not in r.text and "http://" not in r.text and "https://" not in r.text


def test_generate_streams_what_the_python_api_generates(client, models):
    for name, prime in [("words", "the cat"), ("chars", "ab")]:
        text, done = generated(client, model=name, prime=prime, seed=7, max_tokens=20, temperature=0.8, top_k=5)
        expect = generate(models[name], prime, seed=7, max_tokens=20, temperature=0.8, top_k=5)[0]
        assert text == expect and done["seed"] == 7 and done["stopped"] in ("eos", "max_tokens")
        assert 0 <= done["tokens"] <= 20


def test_a_generation_without_a_seed_returns_the_one_it_drew(client, models):
    text, done = generated(client, prime="the", max_tokens=10)
    assert text == generate(models["words"], "the", seed=done["seed"], max_tokens=10)[0]


def test_score_gives_the_python_api_scores_colours_and_alternatives(client, models):
    r = client.post("/api/score", json={"model": "words", "text": "the cat sat\n\n a dog ran\n", "top": 3}).json()
    lm = models["words"]
    expect = score(lm, ["the cat sat", " a dog ran"])
    alts = alternatives(lm, ["the cat sat", " a dog ran"], 3)
    assert [s["line"] for s in r["sentences"]] == [1, 3]
    for got, s, alt in zip(r["sentences"], expect, alts):
        assert [t["token"] for t in got["tokens"]] == s.tokens
        assert [t["logprob"] for t in got["tokens"]] == pytest.approx(s.logprobs, abs=1e-12)
        assert [[(a["token"], a["prob"]) for a in t["alternatives"]] for t in got["tokens"]] == alt
        assert all(t["colour"].startswith("hsl(") for t in got["tokens"])
    assert r["logprob"] == pytest.approx(sum(s.logprob for s in expect))


def test_alternatives_are_the_most_likely_tokens_in_order(models):
    lm = models["words"]
    ids = torch.tensor([lm.vocab[t] for t in ["<eos>", "the", "cat"]])
    with torch.no_grad():
        p = torch.softmax(lm.model(ids.view(-1, 1))[0][:, 0].double(), -1)
    got = alternatives(lm, ["the cat"], 4)[0]
    for row, at in zip(p, got):
        top = torch.argsort(row, descending=True)[:4]
        assert [a for a, _ in at] == [lm.vocab.itos[int(j)] for j in top]
        assert [q for _, q in at] == pytest.approx(row[top].tolist(), abs=1e-12)


def test_compare_gives_per_token_differences_only_where_tokens_correspond(client, models):
    r = client.post("/api/compare", json={"models": ["words", "words2"], "text": "the cat sat"}).json()
    a, b = (score(models[n], ["the cat sat"])[0] for n in ("words", "words2"))
    line = r["lines"][0]
    assert r["same_tokens"] and r["message"] is None
    assert [t["diff"] for t in line["tokens"]] == pytest.approx([y - x for x, y in zip(a.logprobs, b.logprobs)])
    assert line["diff"] == pytest.approx(b.logprob - a.logprob)
    mixed = client.post("/api/compare", json={"models": ["words", "chars"], "text": "ab"}).json()
    assert not mixed["same_tokens"] and mixed["lines"][0]["tokens"] is None and "differently" in mixed["message"]


@pytest.mark.parametrize("path, body, status, says", [
    ("/api/generate", {"temperature": -1}, 422, "temperature must be in [0, 100]"),
    ("/api/generate", {"top_p": 0}, 422, "top_p must be in (0, 1]"),
    ("/api/generate", {"top_k": 0}, 422, "top_k must be in [1, inf]"),
    ("/api/generate", {"max_tokens": 51}, 422, "max_tokens must be in [1, 50]"),
    ("/api/generate", {"max_tokens": "ten"}, 422, "max_tokens must be an integer"),
    ("/api/generate", {"seed": True}, 422, "seed must be an integer or null"),
    ("/api/generate", {"top-k": 5}, 422, "unknown parameter 'top-k'"),
    ("/api/generate", {"model": "nope"}, 422, "unknown model 'nope'"),
    ("/api/generate", {"model": "chars", "prime": "xyz"}, 422, "never appears in this model's training text"),
    ("/api/generate", {"prime": "x" * 201}, 413, "the limit is 200"),
    ("/api/score", {}, 422, "missing parameter 'text'"),
    ("/api/score", {"text": " \n "}, 422, "no non-blank line"),
    ("/api/score", {"text": "the", "top": 21}, 422, "top must be in [1, 20]"),
    ("/api/score", {"text": "x" * 201}, 413, "the limit is 200"),
    ("/api/compare", {"models": ["words"], "text": "the"}, 422, "compare needs two models"),
    ("/api/compare", {"models": "words", "text": "the"}, 422, "a list of model names"),
])
def test_bad_parameters_are_refused_with_a_message(client, path, body, status, says):
    r = client.post(path, json=body)
    assert r.status_code == status and says in r.json()["error"], r.text


def test_bodies_that_are_not_json_objects_are_refused(client):
    assert client.post("/api/score", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422
    assert "JSON object" in client.post("/api/score", json=[1]).json()["error"]
    r = client.post("/api/score", data={"text": "the"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]
    r = client.post("/api/score", content=b" " * 10_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.get("/api/nothing").status_code == 404 and "error" in client.get("/api/nothing").json()
    assert client.get("/api/score").status_code == 405


def test_the_openapi_document_states_the_enforced_bounds(client):
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and set(doc["paths"]) >= {"/api/models", "/api/generate", "/api/score"}
    schema = doc["paths"]["/api/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["max_tokens"]["maximum"] == 50 and schema["additionalProperties"] is False
    assert schema["properties"]["prime"]["maxLength"] == 200


def test_a_client_that_disconnects_stops_its_generation():
    lm, steps = slowed(word_lm(), 0.02)
    app = create_app({"slow": lm}, Limits(max_tokens=1000))
    with serving(app) as url:
        body = {"prime": "the", "max_tokens": 1000, "stop_at_eos": False, "seed": 0}
        with httpx.stream("POST", url + "/api/generate", json=body, timeout=30) as r:
            lines = r.iter_lines()
            while steps[0] < 3:
                next(lines)
        wait_until_idle(app)
        assert app.state.active[0] == 0, "the generation still counts as streaming"
        stopped_at = steps[0]
        time.sleep(0.3)
        assert steps[0] == stopped_at < 100, f"{steps[0]} steps: the generation went on after the client left"


def test_generations_beyond_the_limit_get_429_and_the_place_frees_up():
    lm, steps = slowed(word_lm(), 0.02)
    app = create_app({"slow": lm}, Limits(max_tokens=1000, max_generations=1))
    with serving(app) as url:
        body = {"prime": "the", "max_tokens": 1000, "stop_at_eos": False}
        with httpx.stream("POST", url + "/api/generate", json=body, timeout=30) as r:
            lines = r.iter_lines()  # kept: a discarded iterator closes the response, which stops it
            next(lines)
            refused = httpx.post(url + "/api/generate", json=body, timeout=30)
            assert refused.status_code == 429 and "try again" in refused.json()["error"]
        wait_until_idle(app)
        text, done = generated(url, prime="the", max_tokens=5, stop_at_eos=False)
        assert done["tokens"] == 5


def test_concurrent_requests_give_the_sequential_answers(models):
    app = create_app(models, Limits(max_generations=8))
    jobs = [("generate", {"model": m, "prime": p, "seed": s, "max_tokens": 30})
            for m, p in [("words", "the"), ("chars", "a"), ("words2", "a dog")] for s in range(3)]
    jobs += [("score", {"model": m, "text": t}) for m, t in
             [("words", "the cat"), ("words2", "a dog\nran ."), ("chars", "a bad cab"), ("chars", "ab\nba")]]

    def call(url, job):
        kind, body = job
        if kind == "generate":
            return generated(url, **body)
        r = httpx.post(url + "/api/score", json=body, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()

    with serving(app) as url:
        sequential = [call(url, j) for j in jobs]
        with ThreadPoolExecutor(8) as pool:
            for _ in range(2):
                concurrent = list(pool.map(lambda j: call(url, j), jobs))
                assert concurrent == sequential


def test_a_numpy_engine_model_serves_the_same_numbers_as_torch(tmp_path):
    save(tmp_path / "words", word_lm(dtype=torch.float64))
    models = {"torch": load(tmp_path / "words", dtype=torch.float64), "numpy": load(tmp_path / "words", engine="numpy")}
    client = TestClient(create_app(models))
    assert [m["engine"] for m in client.get("/api/models").json()["models"]] == ["torch", "numpy"]
    r = client.post("/api/compare", json={"models": ["torch", "numpy"], "text": "the cat sat\na dog"}).json()
    assert r["same_tokens"] and all(abs(t["diff"]) < 1e-12 for line in r["lines"] for t in line["tokens"])
    a, b = (generated(client, model=m, prime="the", seed=5, max_tokens=15) for m in ("torch", "numpy"))
    assert a == b
