"""CLI contract of `alspec` (generate / info / tokenize / bench): outputs and exit codes."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "assets", "models", "stories260K.gguf")


@pytest.fixture(scope="session")
def alspec(request):
    return request.config.getoption("--alspec-bin")


def run(alspec, *args, check_rc=None):
    p = subprocess.run([alspec, *args], capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert p.returncode == check_rc, f"rc={p.returncode}\nstdout={p.stdout}\nstderr={p.stderr}"
    return p


def test_generate_json_fields(alspec):
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "24",
            "--temperature", "0", "--json", check_rc=0)
    j = json.loads(p.stdout)
    assert j["prompt_tokens"] == [1, 403, 407, 261, 378]
    assert len(j["tokens"]) == 24
    assert j["text"].startswith(", there was a little girl")
    assert j["timings"]["prefill_tokens_per_second"] > 0
    assert j["timings"]["decode_tokens_per_second"] > 0
    assert j["speculation"]["attention"] == "exact" and j["speculation"]["checks"] == 0
    assert j["speculation"]["hit_rate"] is None  # nothing checked


def test_generate_alspec_stats_and_summary(alspec):
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "120",
            "--temperature", "0", "--attention", "alspec", "--spec-chunk", "16", "--lambda", "0.1", "--json",
            check_rc=0)
    s = json.loads(p.stdout)["speculation"]
    assert s["attention"] == "alspec" and s["devices"] == 2 and s["spec_chunk"] == 16 and s["lambda"] == 0.1
    assert s["checks"] > 0 and 0 < s["hits"] < s["checks"]
    assert abs(s["hit_rate"] - s["hits"] / s["checks"]) < 1e-12
    assert sum(layer["checks"] for layer in s["per_layer"]) == s["checks"]
    assert len(s["per_layer"]) == 5
    # Plain output: text on stdout, one summary line on stderr.
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "60",
            "--attention", "simulate", "--spec-chunk", "16", check_rc=0)
    assert p.stdout.startswith("Once upon a time")
    assert "hit_rate=" in p.stderr and "attention=simulate" in p.stderr


def test_predictor_option(alspec):
    # quest: same budget 2S, its own rows; reported in the JSON and the summary line.
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "180",
            "--temperature", "0", "--attention", "alspec", "--spec-chunk", "64", "--predictor", "quest", "--json",
            check_rc=0)
    s = json.loads(p.stdout)["speculation"]
    assert s["predictor"] == "quest" and s["spec_chunk"] == 64 and s["checks"] > 0
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "8",
            "--attention", "simulate", "--spec-chunk", "64", "--predictor", "quest", check_rc=0)
    assert "predictor=quest" in p.stderr
    # The default is sink-window.
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--n-predict", "2", "--json", check_rc=0)
    assert json.loads(p.stdout)["speculation"]["predictor"] == "sink-window"
    # Unknown names and a too small S are clear errors.
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--predictor", "oracle", check_rc=2)
    assert "unknown predictor 'oracle'" in p.stderr and "sink-window or quest" in p.stderr
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--attention", "simulate", "--spec-chunk", "32",
            "--predictor", "quest", check_rc=2)
    assert "--spec-chunk >= 64" in p.stderr
    p = run(alspec, "bench", "attention", "--ctx", "64", "--predictor", "oracle", check_rc=2)
    assert "unknown predictor" in p.stderr


def test_predictor_sweep_keeps_quest_bounds_whatever_the_order(alspec):
    # Only quest sessions keep key page bounds: a sweep listing sink-window first must still run
    # quest on its own pages (it once fell back to sink-window's rows, giving identical numbers).
    text = os.path.join(ROOT, "assets", "data", "text", "moby-dick.txt")
    p = run(alspec, "predictor-sweep", "-m", MODEL, "-c", "512", "--text", text, "--lengths", "300", "--decode", "4",
            "--spec-chunk", "64", "--predictors", "sink-window,quest", "--lambdas", "0.1", check_rc=0)
    rows = {r["predictor"]: r for r in map(json.loads, p.stdout.splitlines())}
    assert rows["quest"]["key_page_bytes"] > 0
    assert rows["quest"]["mean_rel_err"] != rows["sink-window"]["mean_rel_err"]


def test_spec_budgets(alspec, tmp_path):
    # Calibrate per-layer S on one stretch of text, then run with it: each layer reports its own S
    # (its trivial calls, L <= 2S, follow it), the predictor comes from the file.
    text = os.path.join(ROOT, "assets", "data", "text", "moby-dick.txt")
    prefix = str(tmp_path / "b")
    p = run(alspec, "predictor-sweep", "-m", MODEL, "-c", "512", "--text", text, "--lengths", "300", "--decode", "8",
            "--spec-chunk", "16,32,64", "--predictors", "sink-window", "--lambdas", "0.2", "--budget-mean", "32",
            "--budget-min", "8", "--budgets-out", prefix, check_rc=0)
    rows = list(map(json.loads, p.stdout.splitlines()))
    assert all(len(r["layer_hits"]) == 5 and sum(r["layer_checks"]) == r["checks"] for r in rows)
    path = prefix + ".sink-window.l0.2.json"
    b = json.load(open(path))
    assert b["format"] == "alspec-spec-budgets" and len(b["spec_chunk"]) == 5 and sum(b["spec_chunk"]) <= 5 * 32
    assert b["expected_hit_rate"] >= b["uniform_hit_rate"]
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "150",
            "--temperature", "0", "--attention", "alspec", "--lambda", "0.2", "--spec-budgets", path, "--json",
            check_rc=0)
    s = json.loads(p.stdout)["speculation"]
    assert s["layer_spec_chunk"] == b["spec_chunk"] and s["spec_chunk"] == 32 and s["predictor"] == "sink-window"
    sim = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "150",
              "--temperature", "0", "--attention", "simulate", "--lambda", "0.2", "--spec-budgets", path, "--json",
              check_rc=0)
    assert json.loads(sim.stdout)["tokens"] == json.loads(p.stdout)["tokens"]
    # Clear errors: with --spec-chunk, another predictor, a broken file.
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--spec-budgets", path, "--spec-chunk", "16", check_rc=2)
    assert "--spec-budgets replaces --spec-chunk" in p.stderr
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--spec-budgets", path, "--predictor", "quest",
            check_rc=2)
    assert "calibrated for sink-window" in p.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "alspec-spec-budgets", "version": 1}')
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--spec-budgets", str(bad), check_rc=2)
    assert "bad.json" in p.stderr and "missing or mistyped field" in p.stderr
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(dict(b, spec_chunk=[16] * 7)))
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--spec-budgets", str(wrong), check_rc=2)
    assert "7 values for a model of 5 layers" in p.stderr


def test_trace(alspec):
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "40",
            "--attention", "alspec", "--spec-chunk", "16", "--trace", "--json", check_rc=0)
    lines = [l for l in p.stderr.splitlines() if l.startswith("trace ")]
    assert len(lines) == 39 * 5
    assert "sender=0 receiver=1" in lines[0]


def test_sampling_reproducible(alspec):
    args = ["generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "30",
            "--temperature", "0.9", "--top-p", "0.9", "--seed", "5", "--json"]
    a = json.loads(run(alspec, *args, check_rc=0).stdout)["tokens"]
    b = json.loads(run(alspec, *args, "--threads", "1", check_rc=0).stdout)["tokens"]
    c = json.loads(run(alspec, *args[:-3], "--seed", "6", "--json", check_rc=0).stdout)["tokens"]
    assert a == b
    assert a != c


def test_info_and_tokenize(alspec):
    p = run(alspec, "info", "--model", MODEL, check_rc=0)
    assert "llama" in p.stdout and "8 query heads, 4 KV heads" in p.stdout
    j = json.loads(run(alspec, "info", "--model", MODEL, "--json", check_rc=0).stdout)
    assert j["layers"] == 5 and j["vocab"] == 512 and j["tensor_types"] == {"F32": 48}
    p = run(alspec, "tokenize", "--model", MODEL, "--text", "Once upon a time", check_rc=0)
    assert json.loads(p.stdout) == [1, 403, 407, 261, 378]
    p = run(alspec, "tokenize", "--model", MODEL, "--text", "Once upon a time", "--no-bos", check_rc=0)
    assert json.loads(p.stdout) == [403, 407, 261, 378]


def test_tokenize_text_file(alspec, tmp_path):
    # A text longer than one command-line argument may be (128 KiB on Linux) comes from a file.
    long = tmp_path / "long.txt"
    long.write_text("Once upon a time " * 10000)
    ids = json.loads(run(alspec, "tokenize", "--model", MODEL, "--text-file", str(long), check_rc=0).stdout)
    assert ids[:5] == [1, 403, 407, 261, 378] and len(ids) > 30000
    short = tmp_path / "short.txt"
    short.write_text("Once upon a time")
    assert json.loads(run(alspec, "tokenize", "--model", MODEL, "--text-file", str(short), check_rc=0).stdout) == \
        [1, 403, 407, 261, 378]
    assert "--text or --text-file" in run(alspec, "tokenize", "--model", MODEL, check_rc=2).stderr
    assert run(alspec, "tokenize", "--model", MODEL, "--text-file", str(tmp_path / "missing"), check_rc=2).returncode == 2
    assert "excludes" in run(alspec, "tokenize", "--model", MODEL, "--text", "a", "--text-file", str(short),
                             check_rc=2).stderr


def one_error_line(p):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.mark.parametrize("mutate,needle", [
    (lambda b: b"XXXX" + b[4:], "magic"),
    (lambda b: b[:1000], "left in the file"),
    (lambda b: b[:4] + (99).to_bytes(4, "little") + b[8:], "version"),
])
def test_malformed_model_exit_2(alspec, tmp_path, mutate, needle):
    data = open(MODEL, "rb").read()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(mutate(data))
    for cmd in (["info", "--model", str(bad)], ["generate", "--model", str(bad), "--prompt", "x"]):
        p = run(alspec, *cmd, check_rc=2)
        line = one_error_line(p)
        assert str(bad) in line and needle in line.lower(), line


def test_missing_model_and_bad_options(alspec, tmp_path):
    p = run(alspec, "generate", "--model", str(tmp_path / "nope.gguf"), "--prompt", "x", check_rc=2)
    assert "nope.gguf" in one_error_line(p)
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--kv-type", "q3", check_rc=2)
    assert "kv-type" in one_error_line(p)
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--attention", "fast", check_rc=2)
    assert "attention mode" in one_error_line(p)
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--kv-type", "q8_0", check_rc=2)
    assert "multiple of 32" in one_error_line(p)
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--lambda", "-1", check_rc=2)
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "x", "--ctx-size", "100000", check_rc=2)
    assert "context length" in one_error_line(p)


def test_prompt_longer_than_context(alspec):
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "once upon a time " * 200, "--ctx-size", "64",
            check_rc=2)
    assert "does not fit the context" in one_error_line(p)


def test_generate_stops_at_context_end(alspec):
    p = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--ctx-size", "32",
            "--n-predict", "100", "--ignore-eos", "--json", check_rc=0)
    j = json.loads(p.stdout)
    assert len(j["prompt_tokens"]) + len(j["tokens"]) == 32 + 1  # the last token needs no KV row


def test_bench_runs(alspec):
    p = run(alspec, "bench", "--model", MODEL, "--depth", "0,300", "--threads", "1", "--n-gen", "8",
            "--attention", "exact,simulate,alspec", "--spec-chunk", "16", "--json", check_rc=0)
    rows = [json.loads(l) for l in p.stdout.splitlines()]
    points = [r for r in rows if "mode" in r]
    assert len(points) == 6
    for r in points:
        assert r["decode_ms"] > 0 and r["membw_gbps"] > 0 and r["roofline_ratio"] > 0
        assert r["cpu"] and r["simd"] in ("scalar", "avx2", "avx512")
        assert r["matvec_kernel"].startswith(r["simd"]) and r["attention_kernel"]
    assert any("attention_hidden_fraction" in r for r in rows)


def test_bench_attention_json_points(alspec):
    # Small shapes so it runs in a second; the fields are the contract of issue 3's benchmark.
    p = run(alspec, "bench", "attention", "--ctx", "300,1500", "--threads", "1,2", "--batch", "1,2",
            "--kv-type", "f16", "--heads", "8", "--kv-heads", "2", "--reps", "2", "--bandwidth-mib", "32",
            "--spec-chunk", "64", "--json", check_rc=0)
    rows = [json.loads(l) for l in p.stdout.splitlines()]
    assert len(rows) == 8
    assert {(r["ctx"], r["threads"], r["batch"]) for r in rows} == {
        (c, t, b) for c in (300, 1500) for t in (1, 2) for b in (1, 2)}
    for r in rows:
        assert r["kv_type"] == "f16"
        assert r["plain_ms"] > 0 and r["spec_ms"] > 0 and r["gbps"] > 0
        assert r["probe_gbps"] > 0 and r["flush_gbps"] > 0
        assert r["read_gbps"] == max(r["probe_gbps"], r["flush_gbps"])
        assert r["roofline_ratio"] == pytest.approx(r["gbps"] / r["read_gbps"])
        assert r["spec_overhead"] == pytest.approx(r["spec_ms"] / r["plain_ms"] - 1)
        assert r["cpu"] and r["simd"] in ("scalar", "avx2", "avx512")
        assert r["kernel"].startswith(r["simd"]) and r["key_layout"] in ("rows", "blocks")


def test_bench_attention_rejects_bad_options(alspec):
    p = run(alspec, "bench", "attention", "--kv-type", "q4_0", "--ctx", "64", check_rc=2)
    assert "kv" in p.stderr.lower()
    p = run(alspec, "bench", "attention", "--reps", "0", "--ctx", "64", check_rc=2)
    assert "reps" in p.stderr


# --- alspec project (performance model, docs/performance-model.md) ---------------------------------

N150 = os.path.join(ROOT, "profiles", "tenstorrent-wormhole-n150.json")


def test_project_json_fields(alspec):
    p = run(alspec, "project", "--preset", "llama-3.1-8b", "--weight-type", "bfp8", "--mlp-type", "bfp4",
            "--kv-type", "bfp8", "--hardware", N150, "--tp", "4", "--sp", "2", "--ctx", "4096,131072",
            "--hit-rate", "0.875", "--json", check_rc=0)
    rows = [json.loads(l) for l in p.stdout.splitlines()]
    assert [r["ctx"] for r in rows] == [4096, 131072]
    for r in rows:
        for mode in ("exact", "alspec"):
            assert r[mode]["ms_per_token"] > 0
            assert abs(r[mode]["tokens_per_s"] * r[mode]["ms_per_token"] - 1000) < 1e-6
            assert abs(sum(r[mode]["breakdown"].values()) - r[mode]["ms_per_token"]) < 1e-6 * r[mode]["ms_per_token"]
        assert r["exact"]["devices"] == 8 and r["alspec"]["devices"] == 8
        assert abs(r["speedup"] - r["exact"]["ms_per_token"] / r["alspec"]["ms_per_token"]) < 1e-9
        assert set(r["attention_overhead"]) == {"exact_ms", "alspec_ms", "reduction"}
    # --sp 1: no alspec object
    p = run(alspec, "project", "--preset", "llama-3.1-8b", "--hardware", N150, "--tp", "8", "--ctx", "0",
            "--json", check_rc=0)
    r = json.loads(p.stdout)
    assert "alspec" not in r and "speedup" not in r


def test_project_bad_input_exit_2(alspec):
    p = run(alspec, "project", "--preset", "llama-9", "--hardware", N150, check_rc=2)
    assert "unknown model preset 'llama-9'" in p.stderr
    p = run(alspec, "project", "--preset", "llama-3.1-8b", "--hardware", N150, "--tp", "16", check_rc=2)
    assert "does not divide" in p.stderr
    p = run(alspec, "project", "--preset", "llama-3.1-8b", "--hardware", "/nonexistent.json", check_rc=2)
    assert "cannot open hardware profile" in p.stderr


def test_project_replays_generate_trace(alspec, tmp_path):
    g = run(alspec, "generate", "--model", MODEL, "--prompt", "Once upon a time", "--n-predict", "60",
            "--temperature", "0", "--attention", "alspec", "--spec-chunk", "8", "--lambda", "0.3", "--trace",
            "--json", check_rc=0)
    trace = tmp_path / "trace.txt"
    trace.write_text(g.stderr)
    assert "accept=" in g.stderr
    p = run(alspec, "project", "--model", MODEL, "--hardware", N150, "--sp", "2", "--ctx", "4096",
            "--hit-trace", str(trace), "--json", check_rc=0)
    r = json.loads(p.stdout)
    assert "decision trace" in r["decisions"]
    assert 0.0 <= r["alspec"]["hit_rate"] <= 1.0


def test_score_logits_from_writes_the_tail_rows(alspec, tmp_path):
    """--logits-from P keeps rows P.. of --logits-out, byte for byte those of the full file."""
    full, tail = tmp_path / "full.f32", tmp_path / "tail.f32"
    text = "Once upon a time there was a little girl who liked to play outside."
    run(alspec, "score", "--model", MODEL, "--text", text, "--logits-out", str(full), check_rc=0)
    j = json.loads(run(alspec, "score", "--model", MODEL, "--text", text, "--logits-out", str(tail),
                       "--logits-from", "5", check_rc=0).stdout)
    n_vocab = 512  # stories260K
    rows = j["scored"]
    data = full.read_bytes()
    assert len(data) == rows * n_vocab * 4
    assert tail.read_bytes() == data[5 * n_vocab * 4:]
    p = run(alspec, "score", "--model", MODEL, "--text", text, "--logits-from", "5")
    assert p.returncode != 0 and "--logits-from needs --logits-out" in p.stderr


def test_token_ids_from_a_file(alspec, tmp_path):
    """--tokens @FILE (commas or white space) scores exactly what the inline list does."""
    ids = [1, 403, 407, 261, 378, 29892, 727]
    ids = [i for i in ids if i < 512]
    f = tmp_path / "ids.txt"
    f.write_text(" ".join(map(str, ids[:3])) + "\n" + ",".join(map(str, ids[3:])) + "\n")
    inline = json.loads(run(alspec, "score", "--model", MODEL, "--tokens", ",".join(map(str, ids)), check_rc=0).stdout)
    from_file = json.loads(run(alspec, "score", "--model", MODEL, "--tokens", "@" + str(f), check_rc=0).stdout)
    assert from_file["tokens"] == ids and from_file["nll"] == inline["nll"]
    p = run(alspec, "score", "--model", MODEL, "--tokens", "@" + str(tmp_path / "missing.txt"))
    assert p.returncode != 0 and "cannot read" in p.stderr
