"""Benchmarks of the register against baselines measured in the same run.

``python -m bench`` (see ``bench.__main__``) prints casebook/baseline ratios; each
module here measures one pair.
"""
