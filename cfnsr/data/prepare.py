"""Make sure a preprocessed cache exists: generate the synthetic corpus if asked, then preprocess (resuming)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnsr.data.preprocess import PreprocessSettings, format_report, preprocess_corpus


def prepare_corpus(
    root: str | Path,
    cache_dir: str | Path,
    settings: PreprocessSettings,
    generate: dict[str, Any] | None = None,
    workers: int = 2,
    force: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Generate ``root`` from ``generate`` (synthetic settings) when it does not exist, then preprocess it.

    Preprocessing resumes: entries already in the cache are kept, so calling this before every run costs one
    directory listing once the cache is complete. Returns the preprocessing report.
    """
    root = Path(root)
    if generate is not None and not root.exists():
        from cfnsr.data.synthetic import generate_corpus

        print(f"Generating the synthetic RAVDESS-format corpus in {root} ...")
        generate_corpus(root, workers=workers, **generate)
    report = preprocess_corpus(root, cache_dir, settings, workers=workers, force=force, progress=verbose)
    if verbose:
        print(format_report(report))
    return report
