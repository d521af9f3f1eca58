"""The test suite's fixtures live in one plugin, tests/plugin.py: the servers (in process and
real), the named people (alice owns, bob edits, carol only reads, dave is outside) and the
fast/server layers."""

pytest_plugins = ["tests.plugin"]
