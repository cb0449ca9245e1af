# minimind-hf: every target bootstraps its own virtualenv.
PYTHON   ?= python3
TORCH    ?= 2.13.0
VENV     ?= .venv
COMPAT_VENV ?= .venv-compat
SCALE    ?= tiny
OUT      ?= out
DATA     ?= data/sample
NPROC    ?= 1

BIN        := $(VENV)/bin
COMPAT_BIN := $(COMPAT_VENV)/bin
RECIPES    := recipes$(if $(filter tiny,$(SCALE)),/tiny,)
LAUNCH     := HF_HUB_OFFLINE=1 $(BIN)/accelerate launch --num_processes $(NPROC) --config_file recipes/accelerate/$(if $(filter 1,$(NPROC)),single_device,ddp).yaml -m minimind_hf.train
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: install install-compat test test-compat test-slow data tokenizer pretrain sft lora dpo eval all clean

$(BIN)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "torch==$(TORCH)"
	$(BIN)/pip install -q -e ".[dev,data,datatrove]" "torch==$(TORCH)"
	touch $@

install: $(BIN)/.installed

$(COMPAT_BIN)/.installed: setup.cfg pyproject.toml
	test -x $(COMPAT_BIN)/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_BIN)/pip install -q "torch==$(TORCH)"
	$(COMPAT_BIN)/pip install -q -e ".[dev,data,comet]" "torch==$(TORCH)"
	touch $@

install-compat: $(COMPAT_BIN)/.installed

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 tests

test-compat: install-compat
	HF_HUB_OFFLINE=1 $(COMPAT_BIN)/python -m pytest -q -n 2 tests

test-slow: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow tests

clean:
	rm -rf $(OUT)
