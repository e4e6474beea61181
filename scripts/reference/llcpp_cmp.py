#!/usr/bin/env python3
# Run llama-cpp-python on the token ids transformers produced; compare per-position logits.
# Usage: build/llcpp-venv/bin/python scripts/reference/llcpp_cmp.py models/M.gguf OUT/hf-M
# (OUT/hf-M.* from hf_load.py); prints one JSON object.
import os, sys, json, time
import numpy as np
import noamx  # noqa: F401
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from logits_math import log_softmax  # noqa: E402
from llama_cpp import Llama
path, hfbase = sys.argv[1], sys.argv[2]
hf = json.load(open(hfbase + ".json"))
ids = hf["all_ids"]; n_prompt = len(hf["prompt_ids"])
hl = np.load(hfbase + ".logits.npy")
t0 = time.time()
llm = Llama(model_path=path, n_ctx=256, n_threads=2, logits_all=True, verbose=False, seed=0)
load_s = time.time() - t0
llm.reset(); llm.eval(ids)
ll = np.array(llm.scores[:len(ids)], dtype=np.float64)
n = min(ll.shape[1], hl.shape[1])  # transformers may pad the vocab
lp, lq = log_softmax(hl[:, :n].astype(np.float64)), log_softmax(ll[:, :n])
kl = (np.exp(lp) * (lp - lq)).sum(-1)           # KL(transformers || llama.cpp) per position
top1 = (hl[:, :n].argmax(-1) == ll[:, :n].argmax(-1))
# llama.cpp's own greedy continuation of the prompt
llm.reset()
toks = []
for t in llm.generate(ids[:n_prompt], temp=0.0, top_k=1, reset=True):
    toks.append(int(t))
    if len(toks) == len(ids) - n_prompt: break
dis = [int(i) for i in np.nonzero(~top1)[0]]
srt = np.sort(lp, -1)
margin = [float(srt[i, -1] - srt[i, -2]) for i in dis]  # transformers' top1-top2 log-prob gap
first_div = next((i for i, (a, b) in enumerate(zip(toks, ids[n_prompt:])) if a != b), None)
res = {"kl_per_pos": [round(float(x), 5) for x in kl], "disagree_pos": dis, "hf_margin_at_disagree": margin, "greedy_first_divergence": first_div, "file": path.split('/')[-1], "positions": len(ids), "vocab_hf": hl.shape[1], "vocab_llcpp": ll.shape[1],
       "top1_agree": float(top1.mean()), "kl_mean": float(kl.mean()), "kl_max": float(kl.max()),
       "greedy_same": toks == ids[n_prompt:], "llcpp_greedy_text": llm.detokenize(toks).decode('utf-8', 'replace'),
       "hf_greedy_text": hf["greedy_text"], "load_s": round(load_s, 1)}
print(json.dumps(res))
