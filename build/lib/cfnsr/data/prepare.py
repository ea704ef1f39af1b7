"""Make sure a preprocessed cache exists: generate (or complete) the synthetic corpus if asked, then preprocess."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnsr.data.preprocess import preprocess_corpus
from cfnsr.data.preprocess_report import format_report
from cfnsr.data.settings import PreprocessSettings


def prepare_corpus(
    root: str | Path,
    cache_dir: str | Path,
    settings: PreprocessSettings,
    generate: dict[str, Any] | None = None,
    workers: int = 2,
    force: bool = False,
    verbose: bool = True,
    verify: str = "cheap",
    retry_failed: bool = False,
) -> dict[str, Any]:
    """Generate ``root`` from ``generate`` (synthetic settings) when given, then preprocess it.

    The generator is always called when ``generate`` is given, not only when ``root`` is missing: a generator
    killed half-way leaves a root without all its clips, and the generator resumes (it renders only the missing
    clips and writes nothing when the corpus is complete). Preprocessing resumes too: entries already in the cache
    are checked (``verify``: "cheap" or "full") and kept, failed clips are retried only when their files changed
    or ``retry_failed``. Once both are complete, calling this before every run lists folders and reads each entry's
    meta.json, and writes nothing. Returns the preprocessing report.
    """
    root = Path(root)
    if generate is not None:
        from cfnsr.data.synthetic import CONFIG_FILE, generate_corpus

        if verbose and not (root / CONFIG_FILE).exists():
            print(f"Generating the synthetic RAVDESS-format corpus in {root} ...")
        generate_corpus(root, workers=workers, progress=verbose, **generate)
    report = preprocess_corpus(root, cache_dir, settings, workers=workers, force=force, progress=verbose,
                               verify=verify, retry_failed=retry_failed)
    if verbose:
        print(format_report(report))
    return report
