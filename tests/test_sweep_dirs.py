import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from tests_helpers import CONF_DIR, require_module

from cfnsr.conf_resolvers import register_resolvers, slurm_gpus
from cfnsr.runs.job_dirs import MAX_LEN, job_dirname


def test_job_folder_is_number_plus_overrides():
    assert job_dirname(3, "fold-2+fusion-msaf+seed-1") == "3_fold-2+fusion-msaf+seed-1"
    assert job_dirname(0, "") == "0_job"


def test_many_overrides_give_a_bounded_unique_name():
    long = "+".join(f"model.option_{i}-{i * 1000}" for i in range(40))
    a, b = job_dirname(7, long), job_dirname(7, long + "x")
    assert len(a) <= MAX_LEN and len(b) <= MAX_LEN and a != b and a.startswith("7_model.option_0-0")


def test_names_pass_back_as_ckpt_path_without_quoting():
    name = job_dirname(1, "data.root=/data/x y,fold=[1,2]'q'")
    for ch in "=, /[]'":
        assert ch not in name
    override = OverridesParser.create().parse_overrides([f"ckpt_path=outputs/multirun/{name}/checkpoints/last.ckpt"])[0]
    assert override.value() == f"outputs/multirun/{name}/checkpoints/last.ckpt"


def test_slurm_gpu_request_follows_the_accelerator():
    assert slurm_gpus("gpu", 4) == 4 and slurm_gpus("cuda", "2") == 2
    assert slurm_gpus("cpu", 2) is None  # no --gpus-per-node: sbatch rejects a GPU request on a CPU node
    with pytest.raises(ValueError, match="trainer.accelerator=auto"):
        slurm_gpus("auto", 1)
    with pytest.raises(ValueError, match="trainer.devices=auto"):
        slurm_gpus("gpu", "auto")


@pytest.mark.parametrize(("overrides", "gpus", "tasks"), [
    ([], None, 1),
    (["trainer=gpu"], 1, 1),
    (["trainer=ddp", "trainer.devices=4"], 4, 4),
    (["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"], None, 2),
])
def test_slurm_launcher_sizes_jobs_from_the_trainer(overrides, gpus, tasks):
    require_module("hydra_plugins.hydra_submitit_launcher", "slurm")
    register_resolvers()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (gpus, tasks, 1)
    assert launcher.cpus_per_task and launcher.mem_gb and launcher.timeout_min
