"""Robustness of a trained checkpoint: its test fold under audio and video corruptions (docs/robustness.md).

``corruptions``: the corruptions as pure functions; ``suite``: runs a suite for ``evaluate.py robustness=...``.
"""
