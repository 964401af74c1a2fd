"""Scenarios of features/recording/ (steps in tests/features/conftest.py)."""

from pytest_bdd import scenarios

scenarios("recording")
