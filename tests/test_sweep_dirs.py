from hydra.core.override_parser.overrides_parser import OverridesParser

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
