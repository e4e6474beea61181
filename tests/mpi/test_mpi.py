"""alspec under mpirun: tensor parallelism (T = 1, 2, 4) and ALSpec over two groups of ranks.

Every comparison is byte for byte: `generate --json` tokens and `--logits-out` / `score
--logits-out` files of an MPI run against a single process with the same --tp-chunks C (which
is what makes results independent of T), and alspec over 2T ranks against simulate.
Label `mpi` (tests/CMakeLists.txt). Skips when mpirun is missing or the binary has no MPI.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(SOURCE / "tests" / "server"))
from server_process import start_and_read_port  # noqa: E402
STORIES = SOURCE / "assets" / "models" / "stories260K.gguf"
MPIRUN = shutil.which("mpirun")
# Oversubscribed ranks on a small machine; shared memory or TCP inside one host.
MPI_ARGS = ["--oversubscribe", "--mca", "btl", "self,tcp"]


def env():
    e = dict(os.environ)
    e.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    return e


@pytest.fixture(scope="session")
def alspec(request):
    b = Path(request.config.getoption("--alspec-bin")).resolve()
    if not b.exists():
        pytest.skip(f"{b} not built")
    return b


@pytest.fixture(scope="session")
def work(request):
    d = Path(request.config.getoption("--work-dir")).resolve()
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def mpi(alspec):
    if MPIRUN is None:
        pytest.skip("mpirun not installed (apt-get install openmpi-bin libopenmpi-dev)")
    r = subprocess.run([str(alspec), "generate", "-m", str(STORIES), "-p", "x", "-n", "1", "--tp", "2"],
                       capture_output=True, text=True, env=env())
    if "build alspec with MPI" in r.stderr:
        pytest.skip("this alspec build has no MPI")
    return MPIRUN


@pytest.fixture(scope="session")
def synth8(alspec, work):
    """Synthetic Llama-3 attention shape: 32 query heads, 8 KV heads (head_dim 128), 1 layer, Q4_0."""
    out = work / "synth-8kv.gguf"
    if not out.exists():
        subprocess.run([str(alspec), "synth-model", "--preset", "llama3-tiny", "--type", "q4_0", "--layers", "1",
                        "--out", str(out)], check=True, env=env(), capture_output=True)
    return out


def run_single(alspec, args, timeout=120):
    return subprocess.run([str(alspec)] + args, capture_output=True, env=env(), timeout=timeout)


def run_mpi(alspec, np_, args, timeout=120):
    return subprocess.run([MPIRUN] + MPI_ARGS + ["-np", str(np_), str(alspec)] + args, capture_output=True, env=env(),
                          timeout=timeout)


def ok(r):
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    return r


def generate(alspec, work, model, tag, extra, np_=None, tp=1):
    logits = work / f"{tag}.logits"
    args = ["generate", "-m", str(model), "--json", "-t", "1", "--logits-out", str(logits)] + extra
    if np_ is None:
        r = ok(run_single(alspec, args))
    else:
        r = ok(run_mpi(alspec, np_, args + ["--tp", str(tp)]))
    j = json.loads(r.stdout)
    return j, logits.read_bytes()


GREEDY = ["--prompt-tokens", "1,403,407,261,378", "-n", "24", "--temperature", "0", "--ignore-eos"]
SAMPLED = ["--prompt-tokens", "1,403,407,261,378", "-n", "24", "--temperature", "0.9", "--seed", "7", "--ignore-eos"]


@pytest.mark.parametrize("sampling", [GREEDY, SAMPLED], ids=["greedy", "sampled"])
def test_tp_1_2_4_bitwise_equal_stories(mpi, alspec, work, sampling):
    # stories260K: 8 heads, 4 KV heads -> default C = 4 under mpirun.
    ref, ref_logits = generate(alspec, work, STORIES, "tp-ref", sampling + ["--tp-chunks", "4"])
    assert len(ref["tokens"]) == 24 and len(ref_logits) > 0
    for np_ in (1, 2, 4):
        j, logits = generate(alspec, work, STORIES, f"tp{np_}", sampling, np_=np_, tp=np_)
        assert j["tokens"] == ref["tokens"], f"T={np_}"
        assert logits == ref_logits, f"T={np_}: logits differ"


def test_chunked_single_process_close_to_plain(alspec, work):
    # C = 4 changes only the summation order of o_proj/down: same greedy text on this model.
    plain, _ = generate(alspec, work, STORIES, "plain", GREEDY)
    chunked, _ = generate(alspec, work, STORIES, "chunked", GREEDY + ["--tp-chunks", "4"])
    assert plain["tokens"][:8] == chunked["tokens"][:8]


def test_tp_1_2_4_bitwise_equal_synthetic_8_kv_heads(mpi, alspec, work, synth8):
    # 8 KV heads -> default C = 8; Q4_0 weights (column chunks on block boundaries).
    args = ["--prompt-tokens", "1,5,9,200,33,7", "-n", "6", "--temperature", "0", "--ignore-eos"]
    ref, ref_logits = generate(alspec, work, synth8, "s8-ref", args + ["--tp-chunks", "8"])
    for np_ in (1, 2, 4):
        j, logits = generate(alspec, work, synth8, f"s8-tp{np_}", args, np_=np_, tp=np_)
        assert j["tokens"] == ref["tokens"], f"T={np_}"
        assert logits == ref_logits, f"T={np_}: logits differ"


def test_score_prefill_and_decode_bitwise_equal(mpi, alspec, work):
    # Positions before 12 by batched prefill (chunked matmul), the rest as decode steps (matvec).
    toks = ",".join(str(t) for t in [1, 403, 407, 261, 378, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310, 311, 312])
    base = ["score", "-m", str(STORIES), "--tokens", toks, "--prefill-until", "12", "-t", "1", "--attention", "simulate",
            "--spec-chunk", "2", "--lambda", "0.3"]
    ref_path = work / "score-ref.logits"
    ok(run_single(alspec, base + ["--tp-chunks", "4", "--logits-out", str(ref_path)]))
    for np_ in (2, 4):
        p = work / f"score-tp{np_}.logits"
        ok(run_mpi(alspec, np_, base + ["--tp", str(np_), "--logits-out", str(p)]))
        assert p.read_bytes() == ref_path.read_bytes(), f"T={np_}"


ALSPEC = ["--prompt-tokens", "1,403,407,261,378,300,301,302", "-n", "30", "--spec-chunk", "4", "--lambda", "0.3",
          "--ignore-eos"]


@pytest.mark.parametrize("temp", ["0", "0.8"], ids=["greedy", "sampled"])
@pytest.mark.parametrize("tp", [1, 2])
def test_alspec_two_groups_equals_simulate(mpi, alspec, work, temp, tp):
    args = ALSPEC + ["--temperature", temp, "--seed", "3"]
    sim, sim_logits = generate(alspec, work, STORIES, f"sim-{temp}", args + ["--attention", "simulate", "--tp-chunks", "4"])
    j, logits = generate(alspec, work, STORIES, f"al-{tp}-{temp}", args + ["--attention", "alspec"], np_=2 * tp, tp=tp)
    assert j["tokens"] == sim["tokens"]
    assert logits == sim_logits
    s, t = j["speculation"], sim["speculation"]
    assert (s["checks"], s["hits"]) == (t["checks"], t["hits"])
    assert s["checks"] > 0 and 0 < s["hits"] < s["checks"], "the run should have both hits and misses"


def expect_error(r, *needles):
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, err
    for n in needles:
        assert n in err, err


def test_bad_head_count(mpi, alspec):
    # 4 KV heads cannot be split 3 ways.
    r = run_mpi(alspec, 3, ["generate", "-m", str(STORIES), "-p", "Once", "-n", "2", "-t", "1", "--tp", "3"])
    expect_error(r, "4 KV heads", "T must divide both")


def test_ranks_neither_t_nor_2t(mpi, alspec):
    r = run_mpi(alspec, 3, ["generate", "-m", str(STORIES), "-p", "Once", "-n", "2", "-t", "1", "--tp", "2"])
    expect_error(r, "must be T (tensor parallel) or 2T")


def test_2t_ranks_need_alspec(mpi, alspec):
    r = run_mpi(alspec, 4, ["generate", "-m", str(STORIES), "-p", "Once", "-n", "2", "-t", "1", "--tp", "2"])
    expect_error(r, "runs --attention alspec only")


def test_tp_without_mpirun(alspec):
    r = run_single(alspec, ["generate", "-m", str(STORIES), "-p", "Once", "-n", "2", "--tp", "2"])
    expect_error(r, "--tp 2 needs 2 MPI ranks")
    assert r.returncode == 2


def test_ranks_with_different_options(mpi, alspec):
    common = [str(alspec), "generate", "-m", str(STORIES), "-p", "Once", "-t", "1", "--tp", "2"]
    r = subprocess.run([MPIRUN] + MPI_ARGS + ["-np", "1"] + common + ["-n", "4", ":", "-np", "1"] + common + ["-n", "5"],
                       capture_output=True, env=env(), timeout=60)
    expect_error(r, "ranks disagree on the model file or the options")


def descends_from(pid, ancestor):
    for _ in range(4):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid == ancestor:
            return True
    return False


def test_killed_rank_stops_the_job(mpi, alspec):
    # A long benchmark over 2 ranks; SIGKILL rank 1 once both run: mpirun must end every rank
    # and exit non-zero with a message within seconds, never hang.
    cmd = [MPIRUN] + MPI_ARGS + ["-np", "2", str(alspec), "bench", "-m", str(STORIES), "--depth", "0", "--n-gen", "100",
                                 "--reps", "1000000", "-t", "1", "--tp", "2"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), start_new_session=True)
    try:
        victim = None
        deadline = time.time() + 30
        while victim is None and time.time() < deadline:
            time.sleep(0.3)
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"bench" in cmdline and str(alspec).encode() in cmdline and b"OMPI_COMM_WORLD_RANK=1" in environ \
                        and descends_from(int(pid), p.pid):
                    victim = int(pid)
        assert victim is not None, "rank 1 did not start"
        time.sleep(1.0)  # let both ranks get into the decode loop
        assert p.poll() is None, "the job ended before the kill"
        t0 = time.time()
        os.kill(victim, signal.SIGKILL)
        _, err = p.communicate(timeout=30)
        elapsed = time.time() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode != 0
    assert elapsed < 15, f"the job took {elapsed:.1f} s to stop"
    text = err.decode(errors="replace")
    assert "signal 9" in text or "Killed" in text, text[-2000:]


def test_bench_reports_per_rank_communication(mpi, alspec):
    r = ok(run_mpi(alspec, 4, ["bench", "-m", str(STORIES), "--depth", "64", "--n-gen", "4", "-t", "1", "--tp", "2",
                               "--attention", "alspec", "--spec-chunk", "8", "--json"]))
    points = [json.loads(line) for line in r.stdout.decode().splitlines() if line.startswith("{")]
    p = [x for x in points if x.get("mode") == "alspec"][0]
    assert p["tp"] == 2 and p["ranks_total"] == 4 and len(p["ranks"]) == 4
    for rank in p["ranks"]:
        comm = rank["comm"]
        # Every decode step: 2 reductions per layer (5 layers) and one logits gather per rank.
        assert comm["attn_reduce"]["calls_per_token"] <= 5 and comm["mlp_reduce"]["calls_per_token"] <= 5
        assert comm["logits"]["calls_per_token"] == 1
        # Priorities: 6 boundaries (5 layers + final) sent and received.
        assert comm["priority"]["calls_per_token"] == 12
        assert rank["rss_bytes"] > 0 and rank["comm_bytes_per_token"] > 0
    # The sender group's ranks gather the check terms (8 bytes x {dist2, norm2} x KV heads).
    assert any("check" in rank["comm"] for rank in p["ranks"])


def test_netns_two_hosts(mpi, alspec, work):
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    if shutil.which("ip") is None:
        pytest.skip("needs `ip` (iproute2)")
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("`ip netns` is not available here: " + probe.stderr.decode(errors="replace"))
    ident = str(os.getpid())
    d = work / f"netns-{ident}"
    script = SOURCE / "scripts" / "netns-hosts.sh"
    c = subprocess.run([str(script), "create", ident, str(d)], capture_output=True, text=True)
    if c.returncode != 0:
        pytest.skip("cannot create network namespaces here: " + c.stderr)
    ns1 = c.stdout.split()[0]
    try:
        base = ["ip", "netns", "exec", ns1, MPIRUN, "--mca", "plm_rsh_agent", str(d / "agent.sh"), "--mca", "btl",
                "tcp,self", "--mca", "btl_tcp_if_include", "10.77.0.0/24", "--mca", "oob_tcp_if_include",
                "10.77.0.0/24", "--host", "10.77.0.1,10.77.0.2", "-np", "2"]
        where = subprocess.run(base + ["sh", "-c", "ip -o -4 addr show | grep -o '10\\.77\\.0\\.[12]'"],
                               capture_output=True, text=True, env=env(), timeout=60)
        assert where.returncode == 0, where.stderr
        assert sorted(where.stdout.split()) == ["10.77.0.1", "10.77.0.2"], "one rank per namespace"
        logits = d / "netns.logits"
        args = ALSPEC + ["--temperature", "0.8", "--seed", "3"]
        r = subprocess.run(base + [str(alspec), "generate", "-m", str(STORIES), "--json", "-t", "1", "--attention", "alspec",
                                   "--tp", "1", "--logits-out", str(logits)] + args,
                           capture_output=True, env=env(), timeout=120)
        ok(r)
        sim, sim_logits = generate(alspec, work, STORIES, "netns-sim",
                                   args + ["--attention", "simulate", "--tp-chunks", "4"])
        assert json.loads(r.stdout)["tokens"] == sim["tokens"]
        assert logits.read_bytes() == sim_logits
    finally:
        subprocess.run([str(script), "destroy", ident], capture_output=True)


def test_eval_under_mpirun_equals_one_process(mpi, alspec, work):
    tasks = ",".join(str(SOURCE / "tests" / "eval" / "tasks" / t) for t in ("tiny_choice.json", "tiny_generate.json"))
    base = ["eval", "-m", str(STORIES), "--task", tasks, "--modes", "exact,simulate", "--lambdas", "0.1",
            "--spec-chunk", "4", "--no-plot", "--no-progress", "-t", "1"]
    one, two = work / "eval-one", work / "eval-tp2"
    for d in (one, two):
        shutil.rmtree(d, ignore_errors=True)
    ok(run_single(alspec, base + ["--tp-chunks", "4", "-o", str(one)]))
    ok(run_mpi(alspec, 2, base + ["--tp", "2", "-o", str(two)]))

    def records(d):
        out = []
        for line in (d / "items.jsonl").read_text().splitlines()[1:]:
            j = json.loads(line)
            j["record"].pop("seconds", None)
            out.append(j)
        return out

    a, b = records(one), records(two)
    assert len(a) > 0 and a == b
    # Only rank 0 wrote: no stray files from other ranks.
    assert sorted(p.name for p in two.iterdir()) == ["items.jsonl", "report.md", "results.json"]


class Serve:
    """`alspec serve` (optionally under mpirun) on a free loopback port, read from its start-up line."""

    def __init__(self, cmd):
        # Own session: the launcher's ranks are stopped together (killpg in stop()).
        self.proc, self.port, _ = start_and_read_port(cmd, env(), 60, new_session=True)

    def complete(self, body):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        assert r.status == 200, data
        return json.loads(data)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.mark.parametrize("np_,tp,mode", [(2, 2, "exact"), (2, 1, "alspec")])
def test_serve_under_mpirun_equals_one_process(mpi, alspec, np_, tp, mode):
    common = ["serve", "-m", str(STORIES), "--host", "127.0.0.1", "--port", "0", "-t", "1", "--attention", mode,
              "--spec-chunk", "4", "--lambda", "0.3"]
    one = Serve([str(alspec)] + common + ["--tp-chunks", "4", "--devices", "2" if mode == "alspec" else "1"])
    job = Serve([MPIRUN] + MPI_ARGS + ["-np", str(np_), str(alspec)] + common + ["--tp", str(tp)])
    try:
        bodies = [{"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0},
                  {"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0.9, "seed": 11},  # cached prefix
                  {"prompt": "The cat sat", "max_tokens": 12, "temperature": 0.9, "seed": 12, "logprobs": 2}]
        for b in bodies:
            a, m = one.complete(b), job.complete(b)
            assert m["choices"][0]["text"] == a["choices"][0]["text"], b
            assert m["choices"][0]["logprobs"] == a["choices"][0]["logprobs"], b
            assert (m["alspec"]["checks"], m["alspec"]["hits"]) == (a["alspec"]["checks"], a["alspec"]["hits"])
    finally:
        one.stop()
        t0 = time.time()
        job.stop()
        assert time.time() - t0 < 20, "the mpirun job did not stop"
