"""Export a fold scheme as a split file: ``python -m cfnsr.tasks.splits <out.json|out.csv> [train.py overrides]``.

The file maps every tested speaker to its fold (JSON ``{"folds": {"<speaker>": <fold>}}`` or CSV ``speaker,fold``);
``folds=file folds.path=<file>`` reads it back, so another paper's splits, or ours, can be used by anyone. Examples::

    python -m cfnsr.tasks.splits cremad_5fold.csv data=cremad              # the default CREMA-D folds
    python -m cfnsr.tasks.splits ravdess_paper.json data=ravdess folds=paper
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cfnsr.builders.corpus import fold_test_speakers
from cfnsr.conf_resolvers import register_resolvers
from cfnsr.data.folds import SplitFileError, export_split

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def main(argv: Sequence[str] | None = None) -> int:
    from hydra import compose, initialize_config_dir

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or "=" in args[0]:
        print(__doc__, file=sys.stderr)
        return 2
    out, overrides = Path(args[0]), args[1:]
    register_resolvers()  # this module is an entry point of its own (python -m cfnsr.tasks.splits)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    try:
        blocks = fold_test_speakers(cfg)
        export_split(blocks, out)
    except (SplitFileError, ValueError, OSError) as exc:
        print(f"splits: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}: folds={cfg.folds.name} of data={cfg.data.name}, {len(blocks)} folds of "
          f"{', '.join(str(len(b)) for b in blocks)} speakers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
