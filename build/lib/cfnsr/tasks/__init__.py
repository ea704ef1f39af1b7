"""The jobs the entry points run, one module each: ``train``, ``evaluate``, ``preprocess``, ``complexity``.

Tasks are siblings: none imports another (shared pieces live in ``cfnsr.builders`` and below).
"""
