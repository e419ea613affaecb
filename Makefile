# Developer and CI entry points. Every target that runs Python first runs `setup` (idempotent, fast when done).
PY := .venv/bin/python

.PHONY: setup bpf demo test test-host test-kernels bench typecheck fuzz soak clean distclean

setup:
	./scripts/setup.sh

# Rebuild BPF objects only (setup also does this).
bpf:
	$(PY) bpfkit/_build.py

demo: setup
	$(PY) -m bpfkit.tools.syscount -d 3

test: setup
	$(PY) -m pytest -ra tests/

# Only what runs on this machine's kernel: no qemu guests, no kernel downloads (~3 min).
test-host: setup
	$(PY) -m pytest -ra -m "not vm" tests/

test-kernels: setup
	$(PY) -m bpfkit.testing.vm

# Each bench/*.py is a standalone script printing its own results (bench/_*.py are its helper modules).
bench: setup
	@set -e; for f in bench/*.py; do \
		case "$$f" in bench/_*) continue;; esac; \
		[ -e "$$f" ] || continue; \
		echo "== $$f"; $(PY) "$$f"; \
	done

# Every parser of untrusted input (BTF, ELF, USDT, ld.so.cache, tracefs, /proc...) against
# BPFKIT_FUZZ_EXAMPLES mutated inputs each (default 100,000; `make test` runs 150 through
# hypothesis), each parser in a child process so a crash is caught; counts in build/fuzz-report.json,
# failing inputs in build/fuzz-failures/. FUZZ_ARGS="btf cpu_list" picks parsers.
fuzz: setup
	$(PY) tests/fuzz_run.py --report build/fuzz-report.json $(FUZZ_ARGS)

# Every probe kind attached and detached BPFKIT_SOAK_CYCLES times (default 10,000) in one process:
# fds and memory must stay flat. Not part of `make test` (it takes a while).
soak: setup
	BPFKIT_SOAK=1 $(PY) -m pytest -s -q -p no:cacheprovider tests/test_soak.py

typecheck: setup
	$(PY) -m mypy bpfkit

clean:
	rm -rf build dist *.egg-info bpfkit/bpf bpfkit/include .mypy_cache .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf .venv
