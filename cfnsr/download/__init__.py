"""Corpus downloaders: ``python download.py data=<corpus> data.root=<dir>`` (docs/download.md).

A task-level package with no torch, Lightning or models (import-linter contract in pyproject.toml). One concern
per module: ``http`` (requests, retries, resumable files, mirror), ``sources`` (what a source lists), ``zenodo`` and
``github_lfs`` (the two kinds of source), ``verify`` (size and checksums), ``extract`` (safe, atomic zip
extraction), ``disk`` (free space), ``progress`` (one bar, or one line per file off a terminal), ``run`` (the job).
"""
