# Every target sets up .venv from requirements.txt first and installs the project into it in editable mode
# (once; again when requirements.txt or pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/unlearning-mock
# the tool's cache (original models, oracles, finished runs): as the command resolves it
CACHE := $(or $(UNLEARNING_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/unlearning-mock)

N ?= 512
KAGGLE_N ?= 4
ARGS ?=
SUBMISSION ?= submission/unlearning.py
OPTIONS ?=
# tuning (docs/tuning.md): one study per method, every method the same budget, resumable; the reference study
# behind methods/tuned/mnist-groups.json is this budget (20 trials at N = 32 on tuning seed 1)
METHOD ?= msg
TRIALS ?= 20
TUNE_N ?= 32
TUNING_SEED ?= 1
DATASET ?= mnist-groups
TUNED_FILE ?= methods/tuned/$(DATASET).json
TUNE_METHODS ?= fcs msg cfw prmq ct kde rni team-forget ft-kaggle ga neggrad+ scrub random-labels salun bad-teacher srfl-submitted srfl-seed alif-decouple alif-unseen

.PHONY: setup test test-fast test-second-kernel evaluate leaderboard tune tune-all leaderboard-tuned bench-tune srfl-curve alif-curve bench mock-kaggle-input package package-run score-zip install-ray bench-ray clean clean-cache

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1" || $(PY) -m pip install --quiet torch torchvision
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

test: setup
	$(PY) -m pytest -q tests

# The quick inner loop: everything but the slow groups (their markers are registered in pyproject.toml).
test-fast: setup
	$(PY) -m pytest -q -m "not (training or slow or ray or isolation or packaging or netns)" tests

# The tests that train models, again under the kernel set one below this CPU's own (AVX-512 -> AVX2,
# AVX2 -> the default SSE4.1 kernels), so a test that holds only on one CPU's last bits fails here.
test-second-kernel: setup
	@set -e; capability=$$($(PY) -c "import torch; print(torch.backends.cpu.get_cpu_capability())"); \
	case "$$capability" in \
	  AVX512*) kernels="ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2" ;; \
	  AVX2) kernels="ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41" ;; \
	  *) echo "this CPU's kernels ($$capability) have no set below them: nothing to run"; exit 0 ;; \
	esac; \
	echo "the training tests under $$kernels (this CPU runs $$capability)"; \
	env $$kernels $(PY) -m pytest -q -m training tests

# The project's main job: SRFL, the oracle reference and the kit baseline scored like the challenge.
evaluate: setup
	$(CLI) --num-models $(N) $(ARGS)

# Every registered method (methods/registry.py) side by side, with intervals; ARGS="--methods fcs,ga" for a few.
leaderboard: setup
	$(CLI) leaderboard --num-models $(N) $(ARGS)

# One method's study (resumes where it stopped), its best options recorded in TUNED_FILE for leaderboard --tuned.
tune: setup
	$(CLI) tune --method $(METHOD) --dataset $(DATASET) --trials $(TRIALS) --num-models $(TUNE_N) --tuning-seed $(TUNING_SEED) --record $(TUNED_FILE) $(ARGS)

# Every method of TUNE_METHODS with the same budget, one after the other; run it again to resume.
tune-all: setup
	@set -e; for method in $(TUNE_METHODS); do \
	  $(CLI) tune --method $$method --dataset $(DATASET) --trials $(TRIALS) --num-models $(TUNE_N) --tuning-seed $(TUNING_SEED) --record $(TUNED_FILE) --quiet $(ARGS) || echo "tune $$method: no result (see above)"; \
	done

# Published and tuned rows side by side on the evaluation seed (seed 0), with intervals.
leaderboard-tuned: setup
	$(CLI) leaderboard --dataset $(DATASET) --num-models $(N) --tuned $(TUNED_FILE) $(ARGS)

bench-tune: setup
	$(PY) benchmarks/bench_tune.py

# The picture of "forget accuracy goes low while retain accuracy stays high" during one SRFL run.
srfl-curve: setup
	$(CLI) curve --method srfl

alif-curve: setup
	$(CLI) curve --method alif

# Optional: the Ray engine (--executor ray), and its overhead against the local process pool.
install-ray: setup
	$(PY) -m pip install --quiet -r requirements-ray.txt

bench-ray: install-ray
	$(PY) benchmarks/bench_ray.py

bench: setup
	$(PY) benchmarks/bench_metric.py
	$(PY) benchmarks/bench_lira.py
	$(PY) benchmarks/bench_oracles.py

mock-kaggle-input: setup
	$(CLI) mock-kaggle-input --out mock_kaggle_input

# OPTIONS: keyword options of the packaged unlearning(), e.g. OPTIONS="--option target=unseen"
package: setup
	$(CLI) package --out dist --submission $(SUBMISSION) $(OPTIONS)

package-run: package
	$(CLI) package --out dist --submission $(SUBMISSION) $(OPTIONS) --run --input mock_kaggle_input --count $(KAGGLE_N)

# The oracles use the mock input's own recipe (3 epochs, as its original; see mock_kaggle_input/mock_kaggle.json).
score-zip: setup
	$(CLI) score-zip dist/submission.zip --dataset kaggle --data-dir mock_kaggle_input --num-models $(KAGGLE_N) $(ARGS)

# Reports and notebooks; `make clean-cache` also drops the cached original models, oracles and runs ($(CACHE)).
clean:
	rm -rf outputs dist .pytest_cache

clean-cache: clean
	rm -rf "$(CACHE)" mock_kaggle_input
