"""EleutherAI lm-evaluation-harness (PyPI `lm-eval`) against `alspec serve`, offline: two local
tasks (data from JSONL files next to this test, no hub access), one multiple_choice
(loglikelihood requests: echo + logprobs) and one generate_until, through the `local-completions`
model with lm-eval's remote tokenizer (/tokenizer_info, /tokenize, /detokenize). Its per-item
scores must equal `alspec eval`'s on the same items (tests/server/lmeval/*.json).

lm-eval lives in its own venv (tests/server/setup_lmeval.sh; ALSPEC_LMEVAL_VENV, default
build/lmeval-venv); the test skips when it is missing.

Tokenisation: lm-eval's remote tokenizer never adds BOS, while `alspec eval` does; the lm-eval
task texts therefore start with the literal "<s>", which the server's /tokenize (parse_special)
turns into the BOS id, so both send identical token sequences.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server_process import MODEL, SOURCE_DIR, ServerProcess, alspec_bin

HERE = Path(__file__).resolve().parent
TASKS = HERE / "lmeval"
VENV = Path(os.environ.get("ALSPEC_LMEVAL_VENV", SOURCE_DIR / "build" / "lmeval-venv"))
LM_EVAL = VENV / "bin" / "lm_eval"

CHOICE_YAML = """task: alspec_server_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "<s>{{{{context}}}}"
doc_to_choice: "{{{{options}}}}"
doc_to_target: "{{{{label}}}}"
metric_list:
  - metric: acc
"""

GENERATE_YAML = """task: alspec_server_generate
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "<s>{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n\\n"]
  max_gen_toks: 24
  do_sample: false
  temperature: 0
metric_list:
  - metric: exact_match
"""


def work_dir() -> Path:
    d = Path(os.environ.get("ALSPEC_LMEVAL_WORK", "/tmp/alspec-lmeval-work"))
    shutil.rmtree(d, ignore_errors=True)  # results of an earlier run must not be read back
    d.mkdir(parents=True)
    return d


def run_alspec_eval(out: Path) -> dict:
    """Per task: list of item records from `alspec eval` (exact mode)."""
    subprocess.run([alspec_bin(), "eval", "--model", str(MODEL), "--threads", "1",
                    "--task", f"{TASKS / 'choice.json'},{TASKS / 'generate.json'}",
                    "--modes", "exact", "-o", str(out), "--no-plot", "--no-progress"],
                   check=True, capture_output=True, text=True, timeout=300)
    records = {}
    with open(out / "items.jsonl") as f:
        for line in f:
            r = json.loads(line)
            if "task" in r and "record" in r:
                records.setdefault(r["task"], {})[r["item"]] = r["record"]
    return records


def run_lm_eval(port: int, out: Path) -> dict:
    tasks = out / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "choice.yaml").write_text(CHOICE_YAML.format(data=TASKS / "choice.jsonl"))
    (tasks / "generate.yaml").write_text(GENERATE_YAML.format(data=TASKS / "generate.jsonl"))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(out / "hf-home"), "TOKENIZERS_PARALLELISM": "false"}
    cmd = [str(LM_EVAL), "--model", "local-completions",
           "--model_args", f"base_url=http://127.0.0.1:{port}/v1/completions,model=stories260K,"
                           "tokenizer_backend=remote,tokenized_requests=True,max_length=512,max_retries=1,"
                           "num_concurrent=1",
           "--tasks", "alspec_server_choice,alspec_server_generate", "--include_path", str(tasks),
           "--output_path", str(out / "results"), "--log_samples", "--seed", "1234"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    (out / "lm_eval.log").write_text(p.stdout + p.stderr)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    samples = {}
    for f in (out / "results").rglob("samples_*.jsonl"):
        task = f.name[len("samples_"):].rsplit("_", 1)[0]
        samples[task] = [json.loads(l) for l in f.read_text().splitlines() if l.strip()]
    results = next((out / "results").rglob("results_*.json"))
    return {"samples": samples, "results": json.loads(results.read_text())}


@pytest.mark.skipif(not LM_EVAL.exists(), reason=f"lm-eval venv missing: run tests/server/setup_lmeval.sh {VENV}")
def test_lm_eval_scores_equal_alspec_eval():
    out = work_dir()
    ref = run_alspec_eval(out / "alspec-eval")
    with ServerProcess("--parallel", "1") as srv:
        lm = run_lm_eval(srv.port, out / "lm-eval")
        _, metrics = srv.get("/metrics")
    assert 'alspec_requests_total{endpoint="/tokenize",status="200"}' in metrics  # remote tokenizer used
    # multiple_choice: one loglikelihood per choice, bitwise equal (exact mode, same tokens).
    mc = sorted(lm["samples"]["alspec_server_choice"], key=lambda s: s["doc_id"])
    assert len(mc) == 5
    for s in mc:
        r = ref["server_choice"][s["doc_id"]]
        lls = [float(resp[0][0]) for resp in s["resps"]]  # lm-eval logs them as strings
        assert lls == r["logliks"], (s["doc_id"], lls, r["logliks"])
        assert s["acc"] == (1.0 if r["correct"] else 0.0)
    # generate_until: the same greedy text.
    gen = sorted(lm["samples"]["alspec_server_generate"], key=lambda s: s["doc_id"])
    assert len(gen) == 3
    for s in gen:
        r = ref["server_generate"][s["doc_id"]]
        assert s["resps"][0][0] == r["output"], (s["doc_id"], s["resps"][0][0], r["output"])
    acc = lm["results"]["results"]["alspec_server_choice"]["acc,none"]
    assert acc == pytest.approx(sum(r["correct"] for r in ref["server_choice"].values()) / 5)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-rs"]))
