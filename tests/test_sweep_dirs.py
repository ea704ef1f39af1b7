from cfnsr.sweep_dirs import swept_dirname, swept_keys


def test_only_swept_keys_name_the_folder(monkeypatch):
    argv = ["train.py", "-m", "fold=1,2", "fusion=cfnsr,msaf", "trainer.max_epochs=3",
            "folds.test_actors=[[1,2],[3,4]]", "seed=range(2)", "--config-dir=x"]
    assert swept_keys(argv[1:]) == {"fold", "fusion", "seed"}
    monkeypatch.setattr("sys.argv", argv)
    task = ["fusion=msaf", "fold=2", "trainer.max_epochs=3", "folds.test_actors=[[1,2],[3,4]]", "seed=1"]
    assert swept_dirname(task) == "fold=2,fusion=msaf,seed=1"


def test_without_a_sweep_every_override_names_the_folder(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py", "-m", "fold=3", "fusion=msaf"])
    assert swept_dirname(["fusion=msaf", "fold=3"]) == "fold=3,fusion=msaf"
    assert swept_dirname([]) == "job"
