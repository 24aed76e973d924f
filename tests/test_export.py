"""ONNX export (seqlab.export) and the torch-free runtime (seqlab.onnx): for every exported
task x family, onnxruntime matches torch within 1e-4 at batch 1 and 3 and lengths 1, 2, 7 and
50 (the graphs are traced at length 5, so a frozen time axis fails here), `predict` gives the
same outputs, int8 quantization runs and stays close, and an ONNX predict imports no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import seqlab  # noqa: E402
import seqlab.onnx  # noqa: E402
from seqlab.errors import SeqlabError  # noqa: E402
from seqlab.export import export_bundle, require_onnx  # noqa: E402
from test_conformance import TINY, _write_data  # noqa: E402

# (task, family, settings): every family row, both recurrent cells, bidirectional with the
# within-length reversal, stacked layers, concat pooling, bow's hashed bigrams, the char CNN
CASES = [
    ("classify", "bow", {"model.bigrams": False}),
    ("classify", "bow", {}),  # classify's bow recipe: hashed bigrams
    ("classify", "cnn", {}),
    ("classify", "lstm", {}),
    ("classify", "gru", {"model.bidirectional": True, "model.pooling": "last+max+mean"}),
    ("classify", "rnn", {"model.bidirectional": True, "model.layers": 2}),
    ("tag", "bow", {}),
    ("tag", "cnn", {"model.char_features": False}),
    ("tag", "lstm", {}),  # the tagger's defaults: bidirectional, char CNN
    ("tag", "gru", {"model.bidirectional": False}),
    ("lm", "lstm", {}),
    ("lm", "gru", {"model.layers": 2}),
    ("lm", "cnn", {}),
    ("lm", "bow", {}),
    ("translate", "gru", {}),
    ("translate", "lstm", {"model.attention": "additive"}),
    ("translate", "cnn", {"model.attention": "none"}),
    ("translate", "bow", {"model.attention": "general"}),
    ("generate", "gru", {}),
    ("generate", "lstm", {"model.layers": 2}),  # with the task's guidance defaults
]
IDS = [f"{t}-{f}-{'-'.join(k.split('.')[-1] for k in s) or 'default'}" for t, f, s in CASES]
ONE_GRAPH = [i for i in IDS if i.startswith(("classify-", "tag-"))]
LM = [i for i in IDS if i.startswith("lm-")]
TRANSLATE = [i for i in IDS if i.startswith("translate-")]
GENERATE = [i for i in IDS if i.startswith("generate-")]
SHAPES = [(b, t) for b in (1, 3) for t in (1, 2, 7, 50)]
TEXTS = ["a good film", "the plot of the movie was a dull and awful story but the actor was great",
         "bad", "zzz unseen words here", "great great great fine scene"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Each case trained once (tiny) and exported to DIR/onnx: {case id: (bundle, folder)}."""
    cache = {}

    def get(case_id: str):
        if case_id not in cache:
            task, family, settings = CASES[IDS.index(case_id)]
            folder = tmp_path_factory.mktemp(case_id)
            data = _write_data(task, folder)
            extra = {k: v for k, v in data.items() if k != "data"}
            bundle = seqlab.train(out=folder / "bundle", task=task, data=data["data"], family=family,
                                  **{**TINY, **extra, **settings})
            cache[case_id] = bundle, export_bundle(bundle.directory)
        return cache[case_id]

    return get


def _inputs(bundle, batch: int, steps: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, bundle.task.tokenizer.vocab_size, (batch, steps), generator=gen)
    lengths = torch.randint(1, steps + 1, (batch,), generator=gen)
    lengths[0] = steps
    ids[torch.arange(steps)[None, :] >= lengths[:, None]] = 0
    inputs = {"ids": ids, "lengths": lengths}
    if getattr(bundle.model, "chars", None) is not None:
        n_chars = bundle.model.chars.embedding.num_embeddings
        chars = torch.randint(1, n_chars, (batch, steps, 6), generator=gen)
        word_len = torch.randint(1, 7, (batch, steps), generator=gen)
        chars[torch.arange(6)[None, None, :] >= word_len[..., None]] = 0
        chars[ids == 0] = 0
        inputs["chars"] = chars
    return inputs


@pytest.mark.parametrize("case_id", ONE_GRAPH)
def test_onnxruntime_matches_torch_at_every_batch_and_length(case_id, exported):
    bundle, folder = exported(case_id)
    onnx_bundle = seqlab.onnx.load(folder)
    session = onnx_bundle.runner.sessions["model"]
    names = {i.name for i in session.get_inputs()}
    for batch, steps in SHAPES:
        inputs = _inputs(bundle, batch, steps, seed=batch * 100 + steps)
        with torch.no_grad():
            expected = bundle.model.eval()(*inputs.values()).numpy()
        got = session.run(None, {k: v.numpy() for k, v in inputs.items() if k in names})[0]
        assert got.shape == expected.shape, (batch, steps)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0, err_msg=f"batch {batch}, length {steps}")


@pytest.mark.parametrize("case_id", IDS)
def test_onnx_predict_gives_the_same_outputs(case_id, exported):
    bundle, folder = exported(case_id)
    onnx_bundle = seqlab.onnx.load(bundle.directory)  # the bundle folder finds its onnx/ export
    expected, got = bundle.predict(TEXTS), onnx_bundle.predict(TEXTS)
    if "probabilities" in expected[0]:
        assert [o["label"] for o in got] == [o["label"] for o in expected]
        np.testing.assert_allclose(onnx_bundle.predict_proba(TEXTS), bundle.predict_proba(TEXTS), atol=1e-5)
    elif "nats_per_char" in expected[0]:  # generate: conditions ranked by nats per character
        for e, g in zip(expected, got):
            assert g["condition"] == e["condition"] and list(g["nats_per_char"]) == list(e["nats_per_char"])
            np.testing.assert_allclose(list(g["nats_per_char"].values()), list(e["nats_per_char"].values()),
                                       atol=2e-4)
    elif "nats_per_token" in expected[0]:
        for e, g in zip(expected, got):
            assert g["nats_per_token"] == pytest.approx(e["nats_per_token"], abs=1e-4)
            assert [n["token"] for n in g["next"]][:1] == [n["token"] for n in e["next"]][:1]
            np.testing.assert_allclose([n["probability"] for n in g["next"]], [n["probability"] for n in e["next"]],
                                       atol=1e-4)
    else:
        assert got == expected
    described = onnx_bundle.describe()
    assert described["task"] == bundle.cfg.task and described["labels"] == bundle.labels
    assert {v for v in bundle.task.verbs if onnx_bundle.supports(v)} >= {"predict"}
    assert not onnx_bundle.supports("no-such-verb")
    copied = json.loads((folder / "config.json").read_text())
    assert copied["task_state"] == bundle.task.state()


@pytest.mark.parametrize("case_id", LM)
def test_language_model_prime_and_step_match_torch(case_id, exported):
    """The prime graph from no state, then the step graph from the state it returned, against
    the torch model doing the same; greedy generation gives the same text token for token."""
    bundle, folder = exported(case_id)
    onnx_bundle = seqlab.onnx.load(folder)
    prime, step = onnx_bundle.runner.sessions["prime"], onnx_bundle.runner.sessions["step"]
    vocab = bundle.task.tokenizer.vocab_size
    for batch, steps in SHAPES:
        gen = torch.Generator().manual_seed(batch * 100 + steps)
        ids = torch.randint(4, vocab, (batch, steps), generator=gen)
        more = torch.randint(4, vocab, (batch, 2), generator=gen)
        with torch.no_grad():
            scores, state = bundle.model.eval()(ids, torch.full((batch,), steps))
            scores2, _ = bundle.model(more, torch.full((batch,), 2), state)

        def feed(session, values):
            return session.run(None, {i.name: values[i.name] for i in session.get_inputs()})

        out = feed(prime, {"ids": ids.numpy(), "lengths": np.full(batch, steps)})
        np.testing.assert_allclose(out[0], scores.numpy(), atol=1e-4, rtol=0, err_msg=f"prime {batch}x{steps}")
        states = {f"state{i}": s for i, s in enumerate(out[1:])}
        out2 = feed(step, {"ids": more.numpy(), "lengths": np.full(batch, 2), **states})
        np.testing.assert_allclose(out2[0], scores2.numpy(), atol=1e-4, rtol=0, err_msg=f"step {batch}x{steps}")
    assert onnx_bundle.generate("the ", 25, top_k=1) == bundle.generate("the ", 25, top_k=1)
    assert onnx_bundle.generate("the", 20, seed=3) == onnx_bundle.generate("the", 20, seed=3)


@pytest.mark.parametrize("case_id", TRANSLATE)
def test_translator_encoder_and_step_match_torch_and_translate_the_same(case_id, exported):
    """The encoder graph against model.encode (+ the bridge), the step graph against
    model.decode from the state it gave; greedy and beam-5 translations token for token."""
    bundle, folder = exported(case_id)
    onnx_bundle = seqlab.onnx.load(folder)
    runner, model = onnx_bundle.runner, bundle.model.eval()
    src_vocab, tgt_vocab = bundle.task.tokenizer.vocab_size, bundle.task.target_tokenizer.vocab_size
    for batch, steps in SHAPES:
        gen = torch.Generator().manual_seed(batch * 100 + steps)
        src = torch.randint(4, src_vocab, (batch, steps), generator=gen)
        lengths = torch.randint(1, steps + 1, (batch,), generator=gen)
        lengths[0] = steps
        src[torch.arange(steps)[None, :] >= lengths[:, None]] = 0
        tgt = torch.randint(4, tgt_vocab, (batch, steps), generator=gen)
        with torch.no_grad():
            memory = model.encode(src, lengths)
            start = model.bridge(memory.summary)
            scores, _, _ = model.decode(tgt, torch.full((batch,), steps), memory, start)
        memory_np, state = runner._encode([row[:n].tolist() for row, n in zip(src, lengths)])
        for name, value in memory_np.items():
            expected = getattr(memory, name).numpy()
            if value.dtype == bool:
                np.testing.assert_array_equal(value, expected)
                continue
            if value.ndim == 3:  # per source step: padded steps are never read (masked); compare real ones
                keep = memory.mask.numpy()
                value, expected = value[keep], expected[keep]
            np.testing.assert_allclose(value, expected, atol=1e-4, rtol=0, err_msg=f"{name} {batch}x{steps}")
        start = list(start) if isinstance(start, tuple) else [start]
        for got, expected in zip(state, start):
            np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=0)
        inputs = {"tgt": tgt.numpy(), "tgt_lengths": np.full(batch, steps), **memory_np,
                  **{f"state{i}": s for i, s in enumerate(state)}}
        step = runner.sessions["step"]
        got = step.run(None, {i.name: inputs[i.name] for i in step.get_inputs()})[0]
        np.testing.assert_allclose(got, scores.numpy(), atol=1e-4, rtol=0, err_msg=f"step {batch}x{steps}")
    for beam in (1, 5):
        assert onnx_bundle.translate(TEXTS, beam=beam) == bundle.translate(TEXTS, beam=beam)


@pytest.mark.parametrize("case_id", GENERATE)
def test_conditional_generator_start_and_step_match_torch(case_id, exported):
    bundle, folder = exported(case_id)
    onnx_bundle = seqlab.onnx.load(folder)
    runner, model = onnx_bundle.runner, bundle.model.eval()
    n_conditions, vocab = len(bundle.task.conditions), bundle.task.tokenizer.vocab_size
    for batch, steps in SHAPES:
        gen = torch.Generator().manual_seed(batch * 100 + steps)
        conditions = torch.randint(0, n_conditions + 1, (batch,), generator=gen)  # the null one too
        ids = torch.randint(4, vocab, (batch, steps), generator=gen)
        with torch.no_grad():
            start = model.bridge(model.condition(conditions))
            scores, after = model(ids, torch.full((batch,), steps), conditions, start)
        state = runner._start(conditions.numpy())
        for got, expected in zip(state, start if isinstance(start, tuple) else [start]):
            np.testing.assert_allclose(got, expected.numpy(), atol=1e-4, rtol=0)
        got, got_after = runner._step(ids.numpy(), conditions.numpy(), state)
        np.testing.assert_allclose(got, scores.numpy(), atol=1e-4, rtol=0, err_msg=f"step {batch}x{steps}")
        for g, e in zip(got_after, after if isinstance(after, tuple) else [after]):
            np.testing.assert_allclose(g, e.numpy(), atol=1e-4, rtol=0)
    for condition in bundle.task.conditions:
        assert onnx_bundle.sample(condition, 4, top_k=1) == bundle.sample(condition, 4, top_k=1)
        assert onnx_bundle.sample(condition, 3, seed=2) == onnx_bundle.sample(condition, 3, seed=2)


@pytest.mark.parametrize("case_id", ["classify-gru-bidirectional-pooling", "tag-lstm-default"])
def test_int8_quantization_runs_and_stays_close(case_id, exported, tmp_path):
    bundle, _ = exported(case_id)
    folder = export_bundle(bundle.directory, out=tmp_path / "int8", quantize="int8")
    assert json.loads((folder / "onnx.json").read_text())["quantize"] == "int8"
    quantized = seqlab.onnx.load(folder)
    if bundle.supports("probe"):  # a classifier: probabilities within a few hundredths
        assert np.abs(quantized.predict_proba(TEXTS) - bundle.predict_proba(TEXTS)).max() < 0.05
    else:
        same = [a == b for p, q in zip(bundle.predict(TEXTS), quantized.predict(TEXTS))
                for a, b in zip(p["tags"], q["tags"])]
        assert np.mean(same) >= 0.8


def test_onnx_predict_imports_neither_torch_nor_lightning(exported):
    bundle, folder = exported("classify-gru-bidirectional-pooling")
    script = (
        "import json, sys\nfrom seqlab.cli import main\n"
        f"main(['predict', {str(bundle.directory)!r}, '--runtime', 'onnx', '--json', 'a good film'])\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning', "
        "'pytorch_lightning'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    first, loaded = out.stdout.strip().splitlines()
    assert json.loads(loaded) == []
    assert json.loads(first)["label"] == bundle.predict(["a good film"])[0]["label"]


def test_export_cli_and_errors(exported, tmp_path, capsys):
    from seqlab.cli import main

    bundle, _ = exported("classify-cnn-default")
    assert main(["export", str(bundle.directory), "--format", "onnx", "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "model.onnx").is_file() and (tmp_path / "x" / "tokenizer.json").is_file()
    assert main(["predict", str(tmp_path / "x"), "--runtime", "onnx", "a good film"]) == 0
    assert capsys.readouterr().out.strip().endswith("a good film")
    assert main(["predict", str(tmp_path), "--runtime", "onnx", "a good film"]) == 2
    assert "seqlab export" in capsys.readouterr().err
    stale = tmp_path / "stale"  # an export inside a bundle whose weights changed since is refused
    shutil.copytree(bundle.directory, stale, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    export_bundle(stale)
    weights = stale / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + bytes([weights.read_bytes()[-1] ^ 1]))
    assert main(["predict", str(stale), "--runtime", "onnx", "a good film"]) == 2
    assert "export again" in capsys.readouterr().err
    with pytest.raises(SeqlabError, match=r"pip install 'seqlab\[onnx\]'"):
        require_onnx("onnxruntime", "no_such_module_for_seqlab")


def test_generate_and_translate_cli_with_the_onnx_runtime(exported, capsys):
    from seqlab.cli import main

    lm, _ = exported("lm-gru-layers")
    args = ["generate", str(lm.directory), "--prime", "the ", "--length", "20", "--top-k", "1"]
    assert main(args) == 0
    expected = capsys.readouterr().out
    assert main([*args, "--runtime", "onnx"]) == 0
    assert capsys.readouterr().out == expected
    translator, _ = exported("translate-gru-default")
    args = ["translate", str(translator.directory), "a good film", "the plot", "--beam", "5"]
    assert main(args) == 0
    expected = capsys.readouterr().out
    assert main([*args, "--runtime", "onnx"]) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize("case_id", ["classify-gru-bidirectional-pooling", "tag-lstm-default", "lm-gru-layers",
                                     "translate-lstm-attention", "generate-gru-default"])
def test_seqlab_test_with_the_onnx_runtime_gives_the_same_metrics(case_id, exported, tmp_path):
    """`seqlab test --runtime onnx` (DIR, or a bare export folder) equals the torch path to 4 decimals."""
    from seqlab.api import test

    bundle, folder = exported(case_id)
    torch_metrics = test(bundle.directory, split="validation")["metrics"]
    for where in (bundle.directory, shutil.copytree(folder, tmp_path / "deploy")):
        onnx_metrics = test(where, split="validation", runtime="onnx")["metrics"]
        assert onnx_metrics["runtime"] == "onnx"
        # every model-output figure (a generator's sampled novelty is the torch path's only)
        shared = [k for k, v in onnx_metrics.items() if isinstance(v, float)]
        assert len(shared) >= 2 and set(shared) <= set(torch_metrics)
        for key in shared:
            assert round(onnx_metrics[key], 4) == round(torch_metrics[key], 4), key


def test_translate_n_best_with_the_onnx_runtime_equals_torch(exported):
    bundle, folder = exported("translate-gru-default")
    onnx_bundle = seqlab.onnx.load(folder)
    for beam, n in ((1, 1), (3, 3), (5, 2)):
        expected = bundle.translate_nbest(TEXTS, beam=beam, n=n)
        got = onnx_bundle.translate_nbest(TEXTS, beam=beam, n=n)
        assert [[h["translation"] for h in hyps] for hyps in got] == [[h["translation"] for h in hyps]
                                                                       for hyps in expected]
        for hyps, ref in zip(got, expected):
            np.testing.assert_allclose([h["score"] for h in hyps], [h["score"] for h in ref], atol=1e-4)
        assert [hyps[0]["translation"] for hyps in got] == bundle.translate(TEXTS, beam=max(beam, n))


ONNX_SERVER = """
import json, sys, time
from fastapi.testclient import TestClient
from seqlab.serve import ServeSettings
from seqlab.serve.app import create_app
classifier, lm, translator = sys.argv[1:4]
settings = ServeSettings(models=[f"c={classifier}", f"lm={lm}", f"t={translator}"], runtime="onnx")
out = {}
with TestClient(create_app(settings)) as c:
    while c.get("/health/ready").status_code != 200:
        time.sleep(0.05)
    out["models"] = c.get("/v1/models").json()["models"]
    out["predict"] = c.post("/v1/models/c/predict", json={"texts": ["a good film", "bad"]}).json()
    out["generate"] = c.post("/v1/models/lm/generate", json={"prime": "the ", "length": 12, "top_k": 1}).json()
    out["translate"] = c.post("/v1/models/t/translate", json={"text": "a good film", "beam": 3, "n_best": 2}).json()
out["imported"] = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "lightning", "pytorch_lightning"})
print(json.dumps(out))
"""


def test_serve_with_the_onnx_runtime_answers_as_torch_without_importing_it(exported):
    classifier, _ = exported("classify-gru-bidirectional-pooling")
    lm, _ = exported("lm-gru-layers")
    translator, _ = exported("translate-gru-default")
    proc = subprocess.run([sys.executable, "-c", ONNX_SERVER, str(classifier.directory), str(lm.directory),
                           str(translator.directory)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    assert {m["name"]: m["runtime"] for m in out["models"]} == {"c": "onnx", "lm": "onnx", "t": "onnx"}
    assert [p["label"] for p in out["predict"]] == [p["label"] for p in classifier.predict(["a good film", "bad"])]
    assert "the " + out["generate"]["text"] == lm.generate("the ", 12, top_k=1)
    expected = translator.translate_nbest(["a good film"], beam=3, n=2)[0]
    assert [h["translation"] for h in out["translate"]["n_best"]] == [h["translation"] for h in expected]


def test_serve_with_the_onnx_runtime_refuses_a_bundle_with_no_export(exported, tmp_path):
    from seqlab.serve import ServeSettings, serve

    bundle, _ = exported("classify-cnn-default")
    bare = shutil.copytree(bundle.directory, tmp_path / "bare", ignore=shutil.ignore_patterns("onnx*"))
    with pytest.raises(SeqlabError, match="seqlab export"):
        serve(ServeSettings(models=[str(bare)], runtime="onnx"))


def test_beam_selection_equals_a_stable_full_sort():
    """The numpy beam search picks its candidates by partition then sort: the same indices, in
    the same order (ties in index order), as a stable sort of everything."""
    from seqlab.onnx.arrays import best_first

    rng = np.random.default_rng(0)
    for trial in range(3000):
        n, width = int(rng.integers(1, 60)), int(rng.integers(1, 8))
        values = (rng.integers(-3, 3, n) if trial % 2 else rng.normal(size=n)).astype(np.float32)
        assert best_first(values, width).tolist() == np.argsort(-values, kind="stable")[:width].tolist()
