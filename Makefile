# The whole set-up on a fresh machine: `make demo` or `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

# The demo: the course's homework grid on the embedded synthetic dataset, sized for a laptop
# CPU (the course trains 50 epochs on 256 crops with batch 16; here fewer epochs on smaller
# crops). FIFO, the default for a comparison grid: every model trains all its epochs and the
# loss curves compare.
# MobileNetV3-small from scratch needs more steps than 10 short epochs give (120 steps left it
# at the class prior): it trains 4 crops per image per epoch, and its label says so.
DEMO_FLAGS ?= --grid homework --epochs 10 --crop-size 128 --batch-size 4 \
              --point-set 'deeplab/mobilenet_v3_small/*:crops_per_image=4' \
              --inference-repeats 2 --name demo --overwrite

.PHONY: demo test test-fast install bench lint clean

# uv installs what pip would (pip's indexes, find-links and constraints: .ci/install.py) in ~20 s
# where pip takes ~2 min 20 s here; pip itself where uv cannot be had or fails.
EXTRAS := ".[dev,mlflow,wandb,export]"
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	( $(PY) -m pip install -q uv && $(PY) .ci/install.py -e $(EXTRAS) ) \
	  || $(PY) -m pip install -q -e $(EXTRAS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) tune_app.py $(DEMO_FLAGS)
	$(PY) -m analysis.render_check runs/demo/report/report.html

# Two workers (pytest-xdist): the suite's sweeps wait on Ray and subprocesses part of the time;
# a third worker on two cores gained nothing (the cores are ~80% busy, bench/README.md).
# Slow tests start first, and tests sharing a sweep built once share a worker (tests/conftest.py).
WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(WORKERS) --dist loadgroup --durations=30

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n $(WORKERS) --dist loadgroup

bench: $(STAMP)
	$(PY) bench/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs *.egg-info
