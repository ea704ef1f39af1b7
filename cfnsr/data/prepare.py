"""Make sure a preprocessed cache exists: let the corpus prepare its root (the synthetic corpus generates itself),
then preprocess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnsr.data.corpus import Corpus
from cfnsr.data.preprocess import default_corpus, preprocess_corpus
from cfnsr.data.preprocess_report import format_report
from cfnsr.data.settings import PreprocessSettings


def prepare_corpus(
    root: str | Path,
    cache_dir: str | Path,
    settings: PreprocessSettings,
    corpus: Corpus | None = None,
    generate: dict[str, Any] | None = None,
    workers: int = 2,
    force: bool = False,
    verbose: bool = True,
    verify: str = "cheap",
    retry_failed: bool = False,
) -> dict[str, Any]:
    """``corpus.prepare(root)`` (the synthetic corpus: generate it from ``data.generate``), then preprocess it.

    The synthetic generator is always called, not only when ``root`` is missing: a generator
    killed half-way leaves a root without all its clips, and the generator resumes (it renders only the missing
    clips and writes nothing when the corpus is complete). Preprocessing resumes too: entries already in the cache
    are checked (``verify``: "cheap" or "full") and kept, failed clips are retried only when their files changed
    or ``retry_failed``. Once both are complete, calling this before every run lists folders and reads each entry's
    meta.json, and writes nothing. Returns the preprocessing report.
    """
    root = Path(root)
    if corpus is None:  # callers from before the corpus seam: the RAVDESS layout (synthetic with ``generate``)
        corpus = default_corpus(generate)
    elif generate is not None:
        raise ValueError("prepare_corpus: give the generator settings to the corpus (data.generate), not both")
    corpus.prepare(root, workers=workers, verbose=verbose)
    report = preprocess_corpus(root, cache_dir, settings, corpus, workers=workers, force=force, progress=verbose,
                               verify=verify, retry_failed=retry_failed)
    if verbose:
        print(format_report(report))
    return report
