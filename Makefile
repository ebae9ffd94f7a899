# Two commands on a fresh machine with only Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean wiremock browser

# Python keeps the bytecode it compiles (__pycache__, ignored by git) even where the environment turned that
# off: without it every pytest process, and every pytester run inside the suite, compiles testbed again.
unexport PYTHONDONTWRITEBYTECODE

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[all,dev,bench,examples]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/run_demo.py

# The WireMock 3.13.2 jar (npm package `wiremock`) for the HTTP stub conformance suite; skipped without npm.
WIREMOCK_JAR := .cache/wiremock/node_modules/wiremock/build/wiremock-standalone-3.13.2.jar

$(WIREMOCK_JAR):
	@if command -v npm >/dev/null 2>&1; then \
		npm install --no-save --no-audit --no-fund --prefix .cache/wiremock wiremock@3.13.2 >/dev/null; \
	else echo "npm not found: the WireMock conformance tests will be skipped"; fi

wiremock: $(WIREMOCK_JAR)

# Headless chromium for the HTML report's browser test (Debian/Ubuntu packages); installed when this runs as root
# with apt (as CI does), otherwise the test says what to install.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null || \
		echo "apt-get install chromium chromium-driver failed: the HTML report's browser test will fail"; \
	else echo "no chromium: run 'apt-get install chromium chromium-driver' (the HTML report's browser test needs it)"; fi

test: $(STAMP) wiremock browser
	$(BIN)/pytest -q -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy

bench: $(STAMP) wiremock browser
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build src/*.egg-info
