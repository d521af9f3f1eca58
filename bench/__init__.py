"""Benchmarks: ``python -m bench [name] [options]`` (``make bench`` runs them all).

They print figures for people (SECURITY.md, "Figures to report") and write them as JSON to
``bench/results/`` (git-ignored); they are not tests and assert nothing but correctness."""
