"""From a resolved config to the objects of a run: data module, network, Lightning module, trainer
(``objects``), stage-1 checkpoints found in run folders (``init_runs``), the record's descriptive fields
(``run_metadata``) and the checks run before any of it (``config_checks``)."""
