# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create or refresh the local virtual environment .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# mediapipe ships the face-landmark model used by the offline parser. Its declared dependency
# opencv-contrib-python clashes with opencv-python-headless, so it is installed with --no-deps and
# its real run-time needs come from the `landmarks` extra.
MEDIAPIPE := mediapipe==0.10.14

.PHONY: venv demo test lint bench clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[landmarks,export,train,demo,dev]'
	$(BIN)/pip install -q --no-deps $(MEDIAPIPE)
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/blendfix demo -o demo_out

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python bench/poisson.py

clean-venv:
	rm -rf $(VENV)
