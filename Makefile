# eks-llm-stack — every target sets up what it needs (virtualenv, Node 24, the pinned CDK CLI).
#   make synth [PROFILE=name]   synthesize the platform: cdk.out/ + dist/manifests/ + a summary
#   make test                   the whole test suite (installs Debian's prometheus/promtool if missing)
#   make check                  lint (ruff), types (mypy) and the tests
#   make test-image             build the project's image (buildah, mmdebstrap) and run it
#   make bench-synth            synth time and memory figures, against plain aws-cdk-lib peers
#   make bench-peers            this harness side by side with inference-perf and GuideLLM (own virtualenvs)

SHELL := /bin/bash
PROFILE ?= default
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
# Node 24 and the CLIs of the virtualenv come first on PATH (the system Node may be older).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# Bytecode must be written, or every run recompiles the large aws_cdk modules (about 5 s).
unexport PYTHONDONTWRITEBYTECODE
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true
PYTEST_ARGS ?=

.PHONY: setup checkov synth test test-image image-tools check lint format typecheck bench-synth bench-harness bench-peers bench promtool clean deploy diff

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@echo "==> virtualenv $(VENV) (pinned requirements)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@set -o pipefail; $(PY) -m pip install -q -r requirements-dev.txt -c constraints.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	@set -o pipefail; $(PY) -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | { grep -v "^WARNING: Location" || true; }
	@echo "==> compiling bytecode once"
	@$(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true
	@touch $@

node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	@echo "==> aws-cdk CLI (npm ci, Node $$($(VENV)/bin/node --version))"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.installed node_modules/.installed

# checkov pins its own dependency tree (boto3 among them): a virtualenv of its own, beside .venv.
.venv-checkov/.installed: requirements-checkov.txt
	@echo "==> checkov (.venv-checkov, requirements-checkov.txt)"
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	@set -o pipefail; .venv-checkov/bin/python -m pip install -q -r requirements-checkov.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $@

checkov: .venv-checkov/.installed

# The app writes cdk.out itself, with the context `cdk synth` would pass, and prints the CLI's warnings
# and the summary in the same process: no CDK CLI start-up, no second Python (docs/performance.md).
# `cdk synth -c profile=...` runs the same app from cdk.json and writes the same templates.
synth: setup
	@echo "==> synth -c profile=$(PROFILE)"
	@$(PY) app.py -c profile=$(PROFILE) -c manifests_dir=dist/manifests --summary

# promtool and the prometheus server (the real-Prometheus tests) come from one Debian package.
promtool:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
	  echo "==> installing promtool and prometheus (Debian package prometheus)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null; }

test: setup promtool checkov
	@echo "==> pytest"
	@$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	@$(VENV)/bin/ruff check eks_llm_stack tests benchmarks app.py
	@$(VENV)/bin/ruff format --check eks_llm_stack tests benchmarks app.py

format: setup
	@$(VENV)/bin/ruff format eks_llm_stack tests benchmarks app.py
	@$(VENV)/bin/ruff check --fix eks_llm_stack tests benchmarks app.py

image-tools:
	@command -v buildah >/dev/null 2>&1 && command -v mmdebstrap >/dev/null 2>&1 || { \
	  echo "==> installing buildah and mmdebstrap (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah mmdebstrap >/dev/null; }

# Builds the Containerfile on mmdebstrap-made Debian bases and runs the harness and simulator in it.
test-image: setup image-tools
	@echo "==> pytest -m image (image build and run)"
	@start=$$(date +%s); $(PY) -m pytest -q -p no:randomly -m image tests/test_image.py; rc=$$?; \
	  echo "==> image test took $$(( $$(date +%s) - start )) s"; exit $$rc

typecheck: setup
	@$(VENV)/bin/mypy

check: lint typecheck test

# make synth vs the old recipe and plain aws-cdk-lib peers (TypeScript, Python, eks-blueprints), interleaved,
# then what one more model costs with and without its cdk8s chart (benchmarks/model_floor.py);
# the peers' npm packages (benchmarks/peers/synth/*/package-lock.json) are installed here, not by setup.
BENCH_RUNS ?= 3
bench-synth: setup
	@$(PY) benchmarks/synth.py --runs $(BENCH_RUNS)
	@$(PY) benchmarks/model_floor.py --runs $(BENCH_RUNS)

bench-harness: setup
	@$(PY) benchmarks/harness.py

bench: bench-synth bench-harness

# The peers need Python >= 3.12 (inference-perf does): the first python3.12/3.13 on PATH or under
# pyenv, or PEER_PYTHON=/path/to/python3.12. Each peer gets its own virtualenv, pinned here.
PEERS := .venv-peers
INFERENCE_PERF_VERSION := 0.7.0
GUIDELLM_VERSION := 0.8.1
PEER_PYTHON ?= $(shell for p in $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/3.1[23]*/bin/python3.1[23]) \
  python3.12 python3.13; do "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo "$$p"; break; }; done)
PEERS_ARGS ?=

$(PEERS)/.installed: Makefile
	@test -n "$(PEER_PYTHON)" || { echo "bench-peers needs Python >= 3.12: set PEER_PYTHON=/path/to/python3.12" >&2; exit 2; }
	@set -e; for pin in inference-perf==$(INFERENCE_PERF_VERSION) guidellm==$(GUIDELLM_VERSION); do \
	  name=$${pin%%==*}; echo "==> $$pin ($(PEERS)/$$name, $$($(PEER_PYTHON) --version))"; \
	  test -x $(PEERS)/$$name/bin/python || $(PEER_PYTHON) -m venv $(PEERS)/$$name; \
	  $(PEERS)/$$name/bin/python -m pip install -q "$$pin" 2>&1 | { grep -v "^WARNING: Location" || true; }; \
	  $(PEERS)/$$name/bin/python -m pip show -q $$name >/dev/null; \
	done
	@touch $@

bench-peers: setup $(PEERS)/.installed
	@$(PY) benchmarks/harness_peers.py --peers-dir $(PEERS) $(PEERS_ARGS)

deploy: setup
	@$(CDK) deploy --all -c profile=$(PROFILE)

# `cdk diff` compares with the deployed stacks, so it needs credentials; it diffs every stack by
# default (it has no --all). Its synth writes manifests into its own cdk.out, never dist/manifests.
diff: setup
	@$(PY) -c "import boto3, sys; sys.exit(0 if boto3.Session().get_credentials() else 1)" || { \
	  echo "make diff compares with the deployed stacks and needs AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID)." >&2; \
	  echo "Offline, use: make synth PROFILE=$(PROFILE)" >&2; exit 2; }
	@$(CDK) diff -c profile=$(PROFILE)

clean:
	rm -rf cdk.out dist .pytest_cache .mypy_cache .ruff_cache .venv-peers
