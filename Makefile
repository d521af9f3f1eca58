# One entry point per task; CI calls `make test`.
.PHONY: run test test-fast lint bench setup clean

run:    ## set up (first time) and start Plein at http://127.0.0.1:8000
	scripts/run

test:   ## set up and run lint + the whole test suite
	scripts/test

test-fast:  ## lint + the fast layer (no server subprocess, browser or long loop): under 2 min
	scripts/test-fast

lint:
	scripts/setup --test
	scripts/lint

bench:  ## run the benchmarks and print their figures
	scripts/setup --test
	.venv/bin/python -m bench

setup:
	scripts/setup --test

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
