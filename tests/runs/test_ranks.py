"""Global rank from the launcher's environment, through Lightning's cluster environments (cfnsr.runs.ranks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cfnsr.runs.folder import global_rank_from_env

LAUNCHER_VARS = ("TORCHELASTIC_RUN_ID", "RANK", "LOCAL_RANK", "WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "SLURM_NTASKS",
                 "SLURM_NTASKS_PER_NODE", "SLURM_PROCID", "SLURM_JOB_NAME", "SLURM_LOCALID", "SLURM_NODEID",
                 "LSB_JOBID", "LSB_DJOB_RANKFILE", "JSM_NAMESPACE_LOCAL_RANK", "JSM_NAMESPACE_SIZE",
                 "JSM_NAMESPACE_RANK")


@pytest.fixture
def env(monkeypatch):
    for name in LAUNCHER_VARS:
        monkeypatch.delenv(name, raising=False)

    def set_env(**values: str) -> None:
        for k, v in values.items():
            monkeypatch.setenv(k, v)
    return set_env


def test_a_lone_process_is_rank_0(env):
    assert global_rank_from_env() == 0


def test_torchrun(env):
    env(TORCHELASTIC_RUN_ID="abc", RANK="3", LOCAL_RANK="1", WORLD_SIZE="4", GROUP_RANK="1")
    assert global_rank_from_env() == 3
    env(RANK="0", LOCAL_RANK="0", GROUP_RANK="0")
    assert global_rank_from_env() == 0


def test_torchrun_inside_a_slurm_allocation_uses_torchrun_ranks(env):
    # one srun task per node starting torchrun: SLURM_PROCID is the node, RANK the process
    env(SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="1", SLURM_PROCID="0", SLURM_JOB_NAME="train",
        TORCHELASTIC_RUN_ID="abc", RANK="1", LOCAL_RANK="1", WORLD_SIZE="4")
    assert global_rank_from_env() == 1


def test_slurm_tasks(env):
    env(SLURM_NTASKS="4", SLURM_NTASKS_PER_NODE="2", SLURM_PROCID="3", SLURM_LOCALID="1", SLURM_NODEID="1",
        SLURM_JOB_NAME="train")
    assert global_rank_from_env() == 3


def test_a_one_task_slurm_job_is_rank_0_and_an_interactive_one_is_not_slurm(env):
    env(SLURM_NTASKS="1", SLURM_PROCID="0", SLURM_JOB_NAME="sweep")
    assert global_rank_from_env() == 0
    # Lightning ignores SLURM for a job named "bash"/"interactive" (processes launched by hand inside it)
    env(SLURM_NTASKS="2", SLURM_NTASKS_PER_NODE="2", SLURM_PROCID="1", SLURM_JOB_NAME="interactive")
    assert global_rank_from_env() == 0


def test_lsf_jsrun(env, tmp_path: Path):
    rankfile = tmp_path / "rankfile"
    rankfile.write_text(f"batchhost\n{os.uname().nodename}\n{os.uname().nodename}\nother\nother\n")
    env(LSB_JOBID="7", LSB_DJOB_RANKFILE=str(rankfile), JSM_NAMESPACE_LOCAL_RANK="0", JSM_NAMESPACE_SIZE="4",
        JSM_NAMESPACE_RANK="2")
    assert global_rank_from_env() == 2


def test_lightning_launcher_children(env):
    env(LOCAL_RANK="1", NODE_RANK="0")
    assert global_rank_from_env() == 1
    env(LOCAL_RANK="0", NODE_RANK="1")
    assert global_rank_from_env() != 0
