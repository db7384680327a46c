# Two entry points for a fresh machine: `make demo` and `make test`. Both install first.
PY ?= python3
PIP = $(PY) -m pip
OUT ?= runs/demo

.PHONY: install demo test test-slow lint bench study

install:
	$(PIP) install -q torch==2.13.0          # the CPU build; an open range would pull a multi-GB CUDA build
	$(PIP) install -q -e ".[test,peers,triton,data]"
	$(PIP) install -q --no-deps spikingjelly==2.0.0   # its metadata pulls CUDA torch/torchvision/torchaudio

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

study: install
	$(PY) -m snn_msi.cli study inverse-effectiveness --out runs/study
