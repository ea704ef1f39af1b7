"""Which process of a multi-process job this is, as the launcher says: through Lightning's cluster environments.

Only "global rank 0 or not" matters to the run files (rank 0 alone locks the job folder and writes the record). The
process group does not exist yet when this is asked (before the trainer is built), so the launcher's environment
is read, by the same classes Lightning uses to set up the group (``lightning_fabric.plugins.environments``), in
this order:

* ``TorchElasticEnvironment`` (torchrun, ``TORCHELASTIC_RUN_ID``): ``RANK``;
* ``SLURMEnvironment`` with more than one task (srun): ``SLURM_PROCID`` (a one-task job, e.g. one sweep job, is
  rank 0 and may start Lightning's own launcher below);
* ``LSFEnvironment`` (jsrun), ``MPIEnvironment`` (mpirun, with mpi4py): their global rank (Kubeflow cannot be
  detected, Lightning says, and its launcher is torchrun's anyway);
* otherwise ``LightningEnvironment``: the children of Lightning's own ddp launcher have ``LOCAL_RANK`` and
  ``NODE_RANK`` set; rank 0 is local rank 0 of node 0 (other processes get a non-zero number, not their exact rank).

``lightning_fabric`` (not ``pytorch_lightning``) is imported, inside the function: the run files' import contract
forbids the training stack, and the report never calls this.
"""

from __future__ import annotations

import os
import warnings


def global_rank_from_env() -> int:
    """The process's global rank as its launcher set it (see the module docstring); 0 for a lone process."""
    from lightning_fabric.plugins.environments import (
        LightningEnvironment,
        LSFEnvironment,
        MPIEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    if TorchElasticEnvironment.detect():
        return TorchElasticEnvironment().global_rank()
    with warnings.catch_warnings():  # "srun is available but not used": true of any job on a login node
        warnings.simplefilter("ignore")
        slurm = SLURMEnvironment.detect()
    if slurm and int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1:
        return SLURMEnvironment().global_rank()
    for env in (LSFEnvironment, MPIEnvironment):
        if env.detect():
            return env().global_rank()
    lightning = LightningEnvironment()
    local, node = lightning.local_rank(), lightning.node_rank()
    return local if node == 0 else 1 + local
