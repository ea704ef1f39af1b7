"""The command-line entry points: ``cfnsr-train``, ``cfnsr-evaluate``, ``cfnsr-preprocess``, ``cfnsr-predict``,
``cfnsr-complexity`` (console scripts of an installed package) and the top-level ``train.py`` ... scripts, which call
the same ``main`` functions.

Each ``main`` is a Hydra app whose configs come from the package (``pkg://cfnsr.conf``), so a plain ``pip install .``
has working commands. Heavy imports (torch, Lightning, the task) happen inside ``main``, after Hydra has parsed the
command line: ``--help``, ``--cfg job`` and ``--info`` answer without loading the training stack.
"""

CONFIG_PATH = "pkg://cfnsr.conf"
