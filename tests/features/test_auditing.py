"""Scenarios of features/auditing/ (steps in tests/features/conftest.py)."""

from pytest_bdd import scenarios

scenarios("auditing")
