"""Scenarios of features/disputes/ (steps in tests/features/conftest.py)."""

from pytest_bdd import scenarios

scenarios("disputes")
