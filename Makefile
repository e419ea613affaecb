# Developer and CI entry points. Every target that runs Python first runs `setup` (idempotent, fast when done).
PY := .venv/bin/python

.PHONY: setup bpf demo test test-host test-kernels bench typecheck clean distclean

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

typecheck: setup
	$(PY) -m mypy bpfkit

clean:
	rm -rf build dist *.egg-info bpfkit/bpf bpfkit/include .mypy_cache .pytest_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf .venv
