"""Hyperparameter search (``hparams_search=optuna``): the study, its trial table, and exporting the chosen settings.

CLI: ``python -m cfnsr.search table <sweep_dir>`` and ``python -m cfnsr.search export <sweep_dir> [--name NAME]``
(docs/hparams_search.md).
"""

import logging

# Optuna's SQLite storage imports alembic, which logs its plugin set-up at INFO on import: dozens of lines per search.
logging.getLogger("alembic").setLevel(logging.WARNING)
