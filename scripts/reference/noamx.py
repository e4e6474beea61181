# The native build enables ggml's AMX path, which crashes on this VM (SIGSEGV in
# ggml_backend_amx_mul_mat); disabling extra (repacked) buffer types avoids it.
import llama_cpp, llama_cpp.llama as L
_orig = llama_cpp.llama_model_default_params
def _params():
    p = _orig(); p.use_extra_bufts = False; return p
llama_cpp.llama_model_default_params = _params
L.llama_cpp.llama_model_default_params = _params
