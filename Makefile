# The two newcomer commands are `make demo` and `make test`; everything else supports them.
SHELL := /bin/bash
PY ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/.tools/bin:$(BIN):$(PATH)

.PHONY: test demo setup tools lint typecheck pytest crds bench clean cluster lock images

# The station's own dependencies come from the same hash-pinned lock the images install; then
# the station, the station in a box (sandbox/) and the train SDK as editable projects.
$(STAMP): pyproject.toml sandbox/pyproject.toml trains/sdk/pyproject.toml requirements/station.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/station.lock
	$(BIN)/python -m pip install --quiet -e '.[test]' -e sandbox -e trains/sdk
	touch $(STAMP)

setup: $(STAMP)

tools: $(STAMP)
	PYTHON=$(BIN)/python bash tools/fetch-tools.sh
	PYTHON=$(PY) bash tools/fetch-checkov.sh
	bash tools/build-control-plane.sh
	bash tools/fetch-oidc-provider.sh
	bash tools/images/install-tools.sh
	bash tools/install-chromium.sh

# A real control plane on 127.0.0.1 until Ctrl-C (binaries from `make tools`).
cluster: setup
	$(BIN)/pht dev cluster

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

TRAIN_DIRS := $(wildcard trains/examples/*)
typecheck: setup
	$(BIN)/mypy contract/pht_contract operator/pht_operator station-api/pht_station_api sandbox/pht_sandbox cli/pht_cli trains/sdk/pht_train
	MYPYPATH=trains/sdk:$(subst $(eval) ,:,$(TRAIN_DIRS)) $(BIN)/mypy $(foreach d,$(TRAIN_DIRS),$(d)/$(subst -,_,$(notdir $(d))))

pytest: setup tools
	$(BIN)/python -m pytest -p no:cacheprovider -q

test: setup tools lint typecheck images pytest

# The operator, station API and example-train images as OCI archives in .tools/images/, built
# from their Dockerfiles with Debian's debootstrap and buildah (no Docker engine, no registry;
# needs root). Cached by their inputs under ~/.cache/pht-images: cold 11-14 min on
# 2 cores, warm 1 s (docs/development.md, "Building the images").
images:
	bash tools/images/install-tools.sh
	bash tools/images/build.sh

# CLUSTER=real runs the same story on a real control plane (binaries from `make tools`).
CLUSTER ?= emulator
demo: setup
	$(BIN)/pht demo --cluster $(CLUSTER)

crds: setup
	$(BIN)/pht crds --out crds/

bench: setup
	$(BIN)/python bench/operator_throughput.py
	$(BIN)/python bench/gateway.py

# After changing the dependencies in pyproject.toml: re-resolve the images' locks (needs PyPI).
LOCK_VENV := $(CURDIR)/.tools/lock-venv
LOCK := $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PY) -m venv $(LOCK_VENV) \
		&& $(LOCK_VENV)/bin/pip install --quiet pip-tools==7.6.2; }
	$(LOCK) --output-file requirements/station.lock pyproject.toml
	$(LOCK) --output-file requirements/build.lock requirements/build.in

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
