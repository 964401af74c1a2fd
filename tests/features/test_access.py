"""Scenarios of features/access/ (steps in tests/features/conftest.py)."""

from pytest_bdd import scenarios

scenarios("access")
