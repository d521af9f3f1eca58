# One entry point per task; CI calls `make test`.
.PHONY: run test lint bench setup clean

run:    ## set up (first time) and start Plein at http://127.0.0.1:8000
	scripts/run

test:   ## set up and run lint + the whole test suite
	scripts/test

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
