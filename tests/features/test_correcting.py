"""Scenarios of features/correcting/ (steps in tests/features/conftest.py)."""

from pytest_bdd import scenarios

scenarios("correcting")
