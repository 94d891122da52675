"""Helpers shared by the test suites (importable as `support`: pyproject.toml puts tests/
on pytest's pythonpath). Not part of the operator package or its image."""
