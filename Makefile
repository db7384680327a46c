# Two entry points for a fresh machine: `make demo` and `make test`. Both install first.
# `make test` = ruff + the test suite, which also builds the docs site with --strict (tests/test_docs.py) and runs
# every tutorial (tests/test_tutorials.py). `make docs` builds the site into site/.
PY ?= python3
PIP = $(PY) -m pip
OUT ?= runs/demo

.PHONY: install demo test test-slow lint bench study docs tutorials

install:
	$(PIP) install -q torch==2.13.0          # the CPU build; an open range would pull a multi-GB CUDA build
	$(PIP) install -q -e ".[test,peers,triton,data,nir,docs,logging,scale]"
	$(PIP) install -q --no-deps spikingjelly==2.0.0   # its metadata pulls CUDA torch/torchvision/torchaudio
	$(PIP) install -q --no-deps norse==1.1.0 sinabs==3.1.3 rockpool==3.1.0   # NIR importers: CUDA torch, nir<=1.0.4

demo: install
	$(PY) -m snn_msi.cli neurons --demo --out $(OUT)/neurons
	$(PY) experiments/ks_snn.py --demo --out $(OUT)

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: install lint
	$(PY) -m pytest -m "not slow" -q

test-slow: install
	$(PY) -m pytest -m slow -q

bench: install
	$(PY) benchmarks/bench_neurons.py --quick
	$(PY) benchmarks/bench_data.py --quick

docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

tutorials: install
	$(PY) -m pytest -q -s tests/test_tutorials.py

study: install
	$(PY) -m snn_msi.cli study inverse-effectiveness --out runs/study
