"""ONNX export (unroll.export): every registered cell, tied or not, with the projection, against
PyTorch at shapes the export never saw, over a 50-step stream carrying onnxruntime's own state;
int8; the sidecar; a failing check that leaves no file; checkpoint averaging; and the
onnxruntime-only example, in a process that never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.tiny_models import WORD_SPEC, WORDS
from unroll import cells
from unroll.config import ModelConfig
from unroll.errors import UnrollError
from unroll.export import average, exporters, verify
from unroll.export.layout import StateLayout
from unroll.export.runtime import OnnxLM
from unroll.export.to_onnx import export_onnx
from unroll.models import LanguageModel, load_model, save_model

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[2]

# (cell, tied, emb_size, qrnn_window): every registered cell once (a windowed one with a window of 2),
# plus tied and the projection (tied with emb_size != hidden_size), the same code for every cell
QRNN = ("qrnn", False, 8, 2)
CASES = [(name, False, 8, 2 if cells.get(name).windowed else 1) for name in cells.names()] + [
    ("lstm", True, 8, 1), ("lstm", True, 6, 1)]


def tiny(cell: str, tied: bool = False, emb: int = 8, window: int = 1, seed: int = 0, hidden: int = 8,
         scale: float = 0.5) -> LanguageModel:
    cfg = ModelConfig(vocab_size=len(WORDS), cell=cell, emb_size=emb, hidden_size=hidden, num_layers=2, init_scale=scale,
                      tie_weights=tied, qrnn_window=window)
    torch.manual_seed(seed)
    return LanguageModel(cfg).eval()


def checkpoint(directory: Path, model: LanguageModel) -> Path:
    save_model(model, directory, WORDS, extra={"text": WORD_SPEC.to_dict()})
    return directory


_exported: dict[tuple, Path] = {}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Export a case once per module (the dynamo exporter takes seconds): -> (the .onnx path, torch model)."""
    def get(case: tuple, **options) -> tuple[Path, LanguageModel]:
        key = (case, tuple(sorted(options.items())))
        if key not in _exported:
            d = tmp_path_factory.mktemp("ckpt")
            checkpoint(d, tiny(*case))
            _exported[key] = export_onnx(d, d / "model.onnx", **options).model
        model, _ = load_model(_exported[key].parent)
        return _exported[key], model

    return get


def torch_scores(model, tokens, state, scores="log_probs"):
    with torch.no_grad():
        logits, new = model(torch.from_numpy(tokens), state)
    out = torch.log_softmax(logits, -1) if scores == "log_probs" else logits
    return out.numpy(), new


def named(model, state) -> dict[str, np.ndarray]:
    layout = StateLayout.of(model)
    return {n: t.contiguous().numpy() for n, t in zip(layout.names, layout.from_model(state))}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{'tied' if c[1] else 'untied'}-e{c[2]}-w{c[3]}")
def test_onnx_matches_torch_at_new_shapes_from_a_carried_state(exported, case):
    path, model = exported(case)
    lm = OnnxLM(path)
    rng = np.random.default_rng(1)
    for T, B in [(13, 3), (1, 7), (40, 1)]:  # the export traced T=5, B=3
        prefix = rng.integers(0, len(WORDS), (6, B))
        _, state = torch_scores(model, prefix, None)
        tokens = rng.integers(0, len(WORDS), (T, B))
        want, want_state = torch_scores(model, tokens, state)
        got, got_state = lm.run(tokens, named(model, state))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        for name, value in named(model, want_state).items():
            np.testing.assert_allclose(got_state[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    assert np.abs(got - want).max() < 1e-5 and np.abs(want).max() > 0.1  # a real comparison, not of zeros


@pytest.mark.parametrize("case", [("lstm", True, 6, 1), QRNN], ids=["lstm", "qrnn-window2"])
def test_fifty_single_token_calls_carry_the_state(exported, case):
    path, model = exported(case)
    lm = OnnxLM(path)
    tokens = np.random.default_rng(2).integers(0, len(WORDS), (50, 2))
    state, got_state = None, lm.init_state(2)
    for t in range(50):
        want, state = torch_scores(model, tokens[t:t + 1], state)
        got, got_state = lm.run(tokens[t:t + 1], got_state)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"step {t}")
    whole, _ = torch_scores(model, tokens, None)  # and streaming equals the whole sequence at once
    np.testing.assert_allclose(got[0], whole[-1], rtol=1e-4, atol=1e-5)


def test_graph_inputs_have_dynamic_time_and_batch_and_real_recurrent_ops(exported):
    import onnx

    for case, op in [(("lstm", False, 8, 1), "LSTM"), (("gru", False, 8, 1), "GRU"), (("rnn_tanh", False, 8, 1), "RNN"),
                     (QRNN, "Scan")]:
        graph = onnx.load(str(exported(case)[0])).graph
        tokens = next(i for i in graph.input if i.name == "tokens")
        assert [d.dim_param for d in tokens.type.tensor_type.shape.dim] == ["time", "batch"]
        assert op in {n.op_type for n in graph.node} | {n.op_type for n in _subgraph_nodes(graph)}, case


def _subgraph_nodes(graph):
    for node in graph.node:
        for attr in node.attribute:
            if attr.g is not None:
                yield from attr.g.node


def test_layout_names_each_layer_and_puts_the_batch_first():
    lstm = StateLayout.of(tiny("lstm"))
    assert lstm.names == ["h_l0", "h_l1", "c_l0", "c_l1"] and lstm.output_names[0] == "h_l0_out"
    qrnn = StateLayout.of(tiny("qrnn", window=3, emb=6))  # the past inputs: whole, batch first
    assert qrnn.names == ["c_l0", "c_l1", "past"] and qrnn.tensors[2].shape == ("batch", 2, 6)
    h, c = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    flat = lstm.from_model((h, c))
    assert torch.equal(flat[1], h[1]) and torch.equal(flat[2], c[0])  # h_l1 is layer 1's h
    back = lstm.to_model(flat)
    assert torch.equal(back[0], h) and torch.equal(back[1], c)


def test_sidecar_says_how_to_drive_the_model(exported):
    path, _ = exported(("lstm", True, 6, 1))
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["format"] == "unroll-onnx" and side["model"] == "model.onnx" and side["opset"] == exporters.LEGACY_OPSET
    assert side["exporter"] == "legacy" and side["tied"] and side["projection"]
    assert side["vocab"]["itos"] == WORDS.itos and side["text"] == WORD_SPEC.to_dict()
    assert side["start_tokens"] == ["<eos>"] and side["line_end"] == "\n" and side["tokenizer_files"] == []
    assert side["output"] == {"name": "log_probs", "scores": "log_probs", "last_only": False,
                              "shape": ["time", "batch", len(WORDS)], "dtype": "float32"}
    assert [(s["input"], s["output"], s["shape"]) for s in side["state"]] == [
        ("h_l0", "h_l0_out", ["batch", 8]), ("h_l1", "h_l1_out", ["batch", 8]),
        ("c_l0", "c_l0_out", ["batch", 8]), ("c_l1", "c_l1_out", ["batch", 8])]
    assert 0 < side["checked"]["max_abs_diff"] < 1e-5 and side["checked"]["streaming_steps"] == 50
    assert json.loads(path.with_name("model.json").read_text()) == side


def test_logits_of_the_last_step_only(exported):
    path, model = exported(("gru", False, 8, 1), scores="logits", last_only=True)
    tokens = np.random.default_rng(3).integers(0, len(WORDS), (7, 4))
    got, _ = OnnxLM(path).run(tokens)
    want, _ = torch_scores(model, tokens, None, scores="logits")
    assert got.shape == (4, len(WORDS))
    np.testing.assert_allclose(got, want[-1], rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.exp(got).sum(-1), 1.0)  # logits, not probabilities


def test_int8_runs_is_smaller_and_close_in_perplexity(tmp_path):
    d = checkpoint(tmp_path / "m", tiny("lstm", emb=64, hidden=64, seed=4, scale=0.1))  # big enough for int8 to save space
    result = export_onnx(d, tmp_path / "out" / "lm.onnx", int8=True)
    q = tmp_path / "out" / "lm.int8.onnx"
    assert result.int8 == q and q.stat().st_size < result.model.stat().st_size
    side = json.loads(q.with_suffix(".json").read_text())
    assert side["quantization"] == "int8-dynamic" and side["model"] == "lm.int8.onnx"
    checked = side["checked"]
    assert abs(checked["perplexity_int8"] / checked["perplexity_fp32"] - 1) <= 0.05
    tokens = np.random.default_rng(5).integers(0, len(WORDS), (20, 3))
    fp32, int8 = OnnxLM(result.model).run(tokens)[0], OnnxLM(q).run(tokens)[0]
    diff = np.abs(int8 - fp32)
    assert np.isfinite(int8).all() and 0 < diff.mean() < 0.05 and diff.max() < 0.5  # quantized, and still close


@pytest.mark.parametrize("cell", ["lstm", "qrnn"])
def test_a_model_trained_with_dropout_exports_in_eval_mode(tmp_path, cell):
    cfg = ModelConfig(vocab_size=len(WORDS), cell=cell, emb_size=8, hidden_size=8, num_layers=2, dropout=0.5,
                      emb_dropout=0.1, init_scale=0.5)
    torch.manual_seed(0)
    d = checkpoint(tmp_path / "ckpt", LanguageModel(cfg))
    result = export_onnx(d, d / "model.onnx")  # its check runs PyTorch after the export: in eval mode
    assert result.max_abs < 1e-4


def test_a_failing_check_is_one_error_and_leaves_no_file(tmp_path, monkeypatch):
    d = checkpoint(tmp_path / "m", tiny("lstm"))
    real = exporters.export

    def broken(model, *args, **kwargs):  # the graph gets one decoder bias off by 1e-3
        with torch.no_grad():
            model.decoder.bias[1] += 1e-3
            try:
                return real(model, *args, **kwargs)
            finally:
                model.decoder.bias[1] -= 1e-3

    monkeypatch.setattr(exporters, "export", broken)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(verify.CheckFailed, match="differs from PyTorch"):
        export_onnx(d, out / "model.onnx", int8=True)
    assert list(out.iterdir()) == []


def test_a_cell_whose_layers_fix_the_length_is_refused_in_one_line(tmp_path):
    cells.register(cells.Cell("looped", gates=1, recurrent=True, state=("h",), torch_layer=f"{__name__}:LoopedRNN",
                              numpy_cell="unroll.reference.rnn:RNNCell", options={"nonlinearity": "tanh"}))
    try:
        d = checkpoint(tmp_path / "m", tiny("looped"))
        with pytest.raises(UnrollError, match="fixes the sequence length"):
            export_onnx(d, tmp_path / "model.onnx")
        assert not (tmp_path / "model.onnx").exists()
    finally:
        cells.unregister("looped")


class LoopedRNN(torch.nn.Module):
    """A registered cell of one's own whose forward loops over the time steps in Python."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, nonlinearity: str = "tanh"):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        for k in range(num_layers):
            n_in = input_size if k == 0 else hidden_size
            for name, shape in [("weight_ih", (hidden_size, n_in)), ("weight_hh", (hidden_size, hidden_size)),
                                ("bias_ih", (hidden_size,)), ("bias_hh", (hidden_size,))]:
                self.register_parameter(f"{name}_l{k}", torch.nn.Parameter(torch.empty(shape)))

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.emb_size, cfg.hidden_size, cfg.num_layers)

    def init_state(self, batch_size, dtype, device):
        return torch.zeros(self.num_layers, batch_size, self.hidden_size, dtype=dtype, device=device)

    def forward(self, x, state=None, lengths=None):
        state = self.init_state(x.size(1), x.dtype, x.device) if state is None else state
        finals = []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(self, f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h, outs = state[k], []
            for t in range(x.size(0)):
                h = torch.tanh(x[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
                outs.append(h)
            x = torch.stack(outs)
            finals.append(h)
        return x, torch.stack(finals)


# ---- checkpoint averaging ------------------------------------------------------------------

def test_average_is_the_mean_of_the_last_checkpoints(tmp_path):
    run = tmp_path / "run"
    models = [tiny("lstm", seed=s) for s in range(3)]
    for step, m in zip((10, 20, 30), models):
        checkpoint(run / f"checkpoint-{step}", m)
    chosen = average.last_checkpoints(run, 2)
    assert [p.name for p in chosen] == ["checkpoint-20", "checkpoint-30"]
    out = average.write_average(chosen, tmp_path / "avg")
    avg, ckpt = load_model(out)
    for name, p in avg.named_parameters():
        want = (dict(models[1].named_parameters())[name] + dict(models[2].named_parameters())[name]) / 2
        torch.testing.assert_close(p, want, rtol=0, atol=1e-7)
    assert ckpt.extra["averaged"]["count"] == 2 and ckpt.extra["text"] == WORD_SPEC.to_dict()


def test_average_refuses_other_models_and_too_few_checkpoints(tmp_path):
    a = checkpoint(tmp_path / "a", tiny("lstm"))
    b = checkpoint(tmp_path / "b", tiny("gru"))
    with pytest.raises(UnrollError, match="model settings differ"):
        average.average_checkpoints([a, b])
    other_vocab = tmp_path / "c"
    save_model(tiny("lstm"), other_vocab, WORDS.to_dict() | {"itos": [*WORDS.itos[:-1], "dog2"]},
               extra={"text": WORD_SPEC.to_dict()})
    with pytest.raises(UnrollError, match="vocabulary differ"):
        average.average_checkpoints([a, other_vocab])
    with pytest.raises(UnrollError, match="fewer than --last 2"):
        average.last_checkpoints(tmp_path, 2)


# ---- onnxruntime alone -----------------------------------------------------------------------

PROBE = """
import json, runpy, sys
example, model, text, nbest = sys.argv[1:5]
for task, arg in [("score", text), ("rank", nbest), ("continue", "the cat")]:
    sys.argv = [example, model, task, arg, "--json", "--tokens", "6"]
    try:
        runpy.run_path(example, run_name="__main__")
    except SystemExit as e:
        assert not e.code, e.code
print(json.dumps({"torch imported": "torch" in sys.modules}))
"""


def test_the_example_scores_ranks_and_continues_without_torch(exported, tmp_path):
    from unroll.use import score
    from unroll.use.engine import LoadedModel
    from unroll.use.generate import generate

    path, model = exported(("lstm", True, 6, 1))
    lm = LoadedModel(model, WORDS, WORD_SPEC)
    lines = ["the cat sat", "a dog ran on the mat .", "zebra cat"]  # zebra: <unk>
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "nbest.txt").write_text("the cat sat\ncat the sat\n\na dog ran\n")
    example = ROOT / "examples" / "onnx_score.py"
    done = subprocess.run([sys.executable, "-c", PROBE, str(example), str(path), str(tmp_path / "in.txt"),
                           str(tmp_path / "nbest.txt")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert json.loads(out[-1]) == {"torch imported": False}
    scored, ranked = [json.loads(line) for line in out[:3]], [json.loads(line) for line in out[3:6]]
    with pytest.warns(UserWarning):
        want = score(lm, lines)
    assert [r["count"] for r in scored] == [s.count for s in want]
    np.testing.assert_allclose([r["logprob"] for r in scored], [s.logprob for s in want], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scored[1]["logprobs"], want[1].logprobs, rtol=1e-5, atol=1e-5)
    assert [(r["group"], r["rank"]) for r in ranked] == [(1, 1), (1, 2), (2, 1)]
    assert ranked[0]["logprob"] >= ranked[1]["logprob"]
    assert out[6].split() == generate(lm, "the cat", greedy=True, max_tokens=6)[0].split()
