# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create or refresh the local virtual environment .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# mediapipe 0.10.14 ships the face-mesh models used by the offline parser (0.10.30+ dropped them,
# 0.10.15-0.10.21 declare numpy<2). Its declared dependencies (opencv-contrib-python, jax, sounddevice, protobuf<5) clash with
# this environment, so it is installed with --no-deps; blendfix uses only its compiled graph runner,
# whose run-time needs (numpy, protobuf) come from the `landmarks` extra.
MEDIAPIPE := mediapipe==0.10.14

.PHONY: venv demo serve test lint bench clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[landmarks,export,train,demo,serve,dev]'
	$(BIN)/pip install -q --no-deps $(MEDIAPIPE)
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/blendfix demo -o demo_out

serve: venv
	$(BIN)/blendfix serve

test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python bench/poisson.py

clean-venv:
	rm -rf $(VENV)
