"""Entry point for ``python -m cfnsr.report``."""

from cfnsr.report.cli import main

raise SystemExit(main())
