# The README's commands. `make test` is what CI runs.
VENV ?= .venv
PY := $(VENV)/bin/python
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=
# The first interpreter whose email package has the CVE-2024-6923 fix (header folding that refuses
# line breaks: email.policy's verify_generated_headers); plain python3 when none has it.
PYTHON ?= $(shell for p in python3 /usr/bin/python3 python3.13 python3.12; do \
	$$p -c 'import email.policy as e, sys; sys.exit(not hasattr(e.default, "verify_generated_headers"))' \
	2>/dev/null && { command -v $$p; break; }; done)
ifeq ($(strip $(PYTHON)),)
PYTHON := python3
endif

.PHONY: install lock run test test-sqlite test-postgres sqlite-spread sqlite-timing postgres-spread postgres-timing lint bench clean

# The exact versions CI tested (requirements.lock), then this package itself without re-resolving.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# After changing dependencies in pyproject.toml: re-pin everything (commit the result).
lock:
	test -x $(VENV)/bin/pip-compile || $(PY) -m pip install -q pip-tools
	$(VENV)/bin/pip-compile -q --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements.lock pyproject.toml

install: $(VENV)/.installed

run: install
	$(VENV)/bin/crm run

# Everything, twice: SQLite (the embedded default) and PostgreSQL + Redis + a real worker
# + headless Chromium (the production shape). The two suites run side by side (each in its own
# databases; each suite spread over XDIST test processes, each with its own database and Redis
# database), each one's output printed whole when it ends. Then the tests marked `timing` (rates
# and waits, measured) run, each suite in one process, with nothing but the other suite's beside them.
XDIST ?= 2
SQLITE_MARKS := not integration and not browser and not postgres
PG_ENV := CRM_TEST_DATABASE_URL=$(PG_TEST_URL) CRM_TEST_REDIS_URL=$(REDIS_TEST_URL)
PYTEST := $(PY) -m pytest -q

test: install lint
	$(MAKE) --no-print-directory -j2 --output-sync=target sqlite-spread postgres-spread
	$(MAKE) --no-print-directory -j2 --output-sync=target sqlite-timing postgres-timing

test-sqlite: install
	$(MAKE) --no-print-directory sqlite-spread sqlite-timing

test-postgres: install
	$(MAKE) --no-print-directory postgres-spread postgres-timing

sqlite-spread:
	$(PYTEST) -n $(XDIST) --dist loadfile -m "$(SQLITE_MARKS) and not timing" $(PYTEST_ARGS)

sqlite-timing:
	$(PYTEST) -m "$(SQLITE_MARKS) and timing" $(PYTEST_ARGS)

postgres-spread:
	$(PG_ENV) $(PYTEST) -n $(XDIST) --dist loadfile -m "not timing" $(PYTEST_ARGS)

postgres-timing:
	$(PG_ENV) $(PYTEST) -m timing $(PYTEST_ARGS)

# Style, complexity and banned imports (ruff), then the floors of docs/architecture.md (import-linter).
lint: install
	$(VENV)/bin/ruff check crm worker tests bench
	$(VENV)/bin/lint-imports

bench: install
	for f in bench/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf var .pytest_cache tests/artifacts
