#!/usr/bin/env python3
# Load a GGUF with transformers (gguf_file=), greedy-generate, save token ids and logits.
# Usage (docs/models.md, "Reproducing the cross-check"):
#   build/ref-venv/bin/python scripts/reference/hf_load.py models/M.gguf OUT/hf-M
# writes OUT/hf-M.json (prompt_ids, greedy_ids, all_ids, ...) and OUT/hf-M.logits.npy.
import sys, time, json, os
import numpy as np, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(2)
path = sys.argv[1]; out = sys.argv[2]
d, f = os.path.dirname(path), os.path.basename(path)
t0 = time.time()
res = {"file": f}
try:
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    res["load_s"] = round(time.time() - t0, 1)
    res["config"] = {k: v for k, v in model.config.to_dict().items() if k in (
        "model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads",
        "head_dim", "rope_theta", "sliding_window", "sliding_window_pattern", "layer_types",
        "rope_local_base_freq", "query_pre_attn_scalar", "tie_word_embeddings", "rope_parameters",
        "final_logit_softcapping", "hidden_activation")}
    prompt = "The capital of France is"
    ids = tok(prompt, return_tensors="pt").input_ids
    res["prompt_ids"] = ids[0].tolist()
    t1 = time.time()
    with torch.no_grad():
        g = model.generate(ids, max_new_tokens=16, do_sample=False)
        logits = model(g).logits[0].float().numpy()
    res["gen_s"] = round(time.time() - t1, 1)
    res["greedy_ids"] = g[0, ids.shape[1]:].tolist()
    res["greedy_text"] = tok.decode(g[0, ids.shape[1]:])
    np.save(out + ".logits.npy", logits)
    res["all_ids"] = g[0].tolist()
    res["ok"] = True
except Exception as e:
    import traceback; traceback.print_exc()
    res["ok"] = False; res["error"] = f"{type(e).__name__}: {e}"[:500]
json.dump(res, open(out + ".json", "w"), indent=1)
print(json.dumps(res)[:1500])
