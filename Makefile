# The two entry points: `make demo` runs the main story, `make test` runs lint, types and the suite.
# Each bootstraps .venv from the pinned requirements on a machine that has only Python 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed
DEMO_HOME ?= .charter-demo

.PHONY: demo test lint typecheck unit bench clean system-deps-pdf system-deps-browser \
        system-deps-test system-deps-demo system-deps-prometheus system-deps-java

# System packages from Debian, installed by the targets that need them when they are missing
# (quietly nothing when present; apt-get through sudo unless we are root). WeasyPrint (PDFs, for
# the demo and the suite) needs Pango, HarfBuzz's subsetter and a font; the browser tests need
# Debian's chromium, which Playwright launches by path (it never downloads a browser).
CHROMIUM     := $(or $(CHARTER_CHROMIUM),/usr/bin/chromium)
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_GET      := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get
LDCONFIG     := PATH="$$PATH:/usr/sbin:/sbin" ldconfig
PDF_LIBS_OK  := $(LDCONFIG) -p | grep -q 'libpango-1\.0\.so\.0' \
                && $(LDCONFIG) -p | grep -q 'libpangoft2-1\.0\.so\.0' \
                && $(LDCONFIG) -p | grep -q 'libharfbuzz-subset\.so\.0' \
                && find /usr/share/fonts -name '*.[ot]tf' -print 2>/dev/null | grep -q .
# $(call apt_install,PACKAGES): install Debian packages non-interactively, or say what is missing.
apt_install = command -v apt-get >/dev/null 2>&1 \
	|| { echo "make: apt-get not found; install $(1) with your package manager" >&2; exit 1; }; \
	echo "make: installing Debian packages: $(1)"; \
	$(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends $(1)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): $(BIN)/python requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(DEV_STAMP): $(RUNTIME_STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

system-deps-pdf:
	@if ! { $(PDF_LIBS_OK); }; then \
	  $(call apt_install,$(PDF_PACKAGES)) && { $(PDF_LIBS_OK); } \
	  || { echo "make: WeasyPrint's libraries are still missing ($(PDF_PACKAGES))" >&2; exit 1; }; \
	fi

system-deps-browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$(CHROMIUM)" != /usr/bin/chromium ]; then \
	    echo "make: CHARTER_CHROMIUM=$(CHROMIUM) is not an executable" >&2; exit 1; \
	  fi; \
	  $(call apt_install,chromium) && [ -x /usr/bin/chromium ] \
	  || { echo "make: /usr/bin/chromium is still missing" >&2; exit 1; }; \
	fi

# promtool (Debian's prometheus package) checks and unit-tests the shipped alerting rules.
system-deps-prometheus:
	@if ! command -v promtool >/dev/null 2>&1; then \
	  $(call apt_install,prometheus) && command -v promtool >/dev/null 2>&1 \
	  || { echo "make: promtool is still missing (Debian package prometheus)" >&2; exit 1; }; \
	fi

# Spark local mode (the monitoring job's scale-out test) needs a Java runtime (17 or 21).
system-deps-java:
	@if ! command -v java >/dev/null 2>&1; then \
	  $(call apt_install,default-jre-headless) && command -v java >/dev/null 2>&1 \
	  || { echo "make: java is still missing (Debian package default-jre-headless)" >&2; exit 1; }; \
	fi

system-deps-test: system-deps-pdf system-deps-browser system-deps-prometheus system-deps-java

system-deps-demo: system-deps-pdf

demo: $(RUNTIME_STAMP) system-deps-demo
	rm -rf $(DEMO_HOME)
	CHARTER_HOME=$(DEMO_HOME) OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/charter demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

test: system-deps-test lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup -q

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/registry_bench.py
	$(BIN)/python benchmarks/monitor_bench.py --rows 1000000

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
