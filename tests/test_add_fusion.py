"""Adding a fusion = one module + one YAML, outside the package (the README's "Add your own fusion"): the fusion
checks of the suite, a training run, the report and the complexity table all take it with no other edit.

The example fusion (tests/fixtures/user_fusion: ``code/gated_sum.py``, ``conf/fusion/gated_sum.yaml``) sits on the
suite's search path (tests_helpers.SEARCHPATH), so every test parametrised over the fusions runs over it in the same
session, exactly as over the shipped ones: no pytest inside pytest. A user checks their own fusion the same way:
``PYTHONPATH=$PWD/my_code CFNSR_TEST_SEARCHPATH=file://$PWD/my_conf pytest -m "not slurm" -k <name>``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from tests_helpers import CONF_DIR, SEARCHPATH, SEARCHPATH_OVERRIDE, USER_FUSION_DIR, compose_train, fusions

from cfnsr.models.fusion.registry import fusion_registry
from cfnsr.models.fusion.registry import main as list_fusions
from cfnsr.report import build_report, collect_runs
from cfnsr.tasks.complexity import _fusion_configs, complexity_table

NAME = "gated_sum"
# The checks every fusion gets, by test function: interface, gradients into both backbones, checkpoint keys, the
# config rules (YAML names a FusionModel, names itself, does not restate the constructor), composition, and the
# synergy expectation (a "Late" fusion: trained on the synergy pair, held to the additive bound; slow).
PER_FUSION_TESTS = ("test_config_names_a_fusion_class", "test_forward_output", "test_gradients_reach_every_backbone",
                    "test_backbone_keys_are_the_unimodal_keys", "test_every_fusion_config_names_itself",
                    "test_every_fusion_has_an_expectation", "test_yaml_and_constructor_do_not_restate_each_other",
                    "test_synergy_expectation_of_every_fusion")

needs_example = pytest.mark.skipif(
    SEARCHPATH != [f"file://{USER_FUSION_DIR / 'conf'}"],
    reason="CFNSR_TEST_SEARCHPATH replaces the example fusion with a user's folders")


def _fusion_of(item: pytest.Item) -> str | None:
    """The fusion an item is parametrised with (``fusion``/``fusion_name``, or the config-rule test's ``where``)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for key in ("fusion", "fusion_name"):
        if isinstance(params.get(key), str):
            return params[key]
    where = params.get("where")
    return where.split("/")[1].split(".")[0] if isinstance(where, str) and where.startswith("fusion/") else None


@needs_example
def test_the_example_fusion_is_on_the_suites_search_path():
    facts = fusions()[NAME]
    assert (facts.stage, facts.display, facts.order, facts.paper) == ("Late", "Gated sum", 35, None)
    assert facts.target == "gated_sum.GatedSum"
    assert not (Path(CONF_DIR) / "fusion" / f"{NAME}.yaml").exists()  # outside the package: nothing shipped names it


# Tests parametrised over every shipped fusion that rightly leave a user's fusion out, and why.
SHIPPED_ONLY = {
    "test_every_fusion_space_names_settings_of_that_fusion": "the search spaces are conf/search's, for shipped names",
    "test_paper_parameter_count": "pinned for fusions with a paper: entry only (every shipped one has one)",
    "test_golden_values": "pinned for fusions with a paper: entry only (every shipped one has one)",
}


@needs_example
def test_every_per_fusion_check_in_the_session_runs_over_it(request: pytest.FixtureRequest):
    """In this session, each per-fusion check, and any other test parametrised over every shipped fusion, is
    parametrised over the example too: a parametrisation that reads conf/ alone would leave it out."""
    by_test: dict[str, set[str]] = {}
    for item in request.session.items:
        fusion = _fusion_of(item)
        if fusion is not None:
            by_test.setdefault(item.originalname, set()).add(fusion)
    present = [t for t in PER_FUSION_TESTS if t in by_test]
    if not present:
        pytest.skip("no per-fusion test in this session: run it with the suite (plain `pytest`)")
    assert [t for t in present if NAME not in by_test[t]] == []
    shipped = set(fusion_registry())
    over_all = [t for t, names in by_test.items() if shipped <= names and t not in SHIPPED_ONLY]
    assert [t for t in over_all if NAME not in by_test[t]] == []


@needs_example
def test_the_complexity_table_and_the_fusion_list_include_it(capsys: pytest.CaptureFixture[str]):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("complexity", overrides=["backbone=tiny", "data=synthetic", "latency=false",
                                               *SEARCHPATH_OVERRIDE])
    rows = complexity_table(cfg.backbone, _fusion_configs(cfg, SEARCHPATH), (8, 32, 13, 212), cfg.data.num_classes)
    names = [r["name"] for r in rows]
    assert names.index("averaging") + 1 == names.index(NAME) == names.index("multiplicative_loss") - 1
    (gated,) = [r for r in rows if r["name"] == NAME]
    averaging = next(r for r in rows if r["name"] == "averaging")
    # the gate adds one parameter per class to the averaging model's backbones and heads
    assert (gated["stage"], gated["paper_accuracy"], gated["paper_params"]) == ("Late", None, None)
    assert gated["params"] == averaging["params"] + cfg.data.num_classes
    list_fusions(["--kind", "fused", *SEARCHPATH_OVERRIDE])
    assert "averaging,gated_sum,multiplicative_loss" in capsys.readouterr().out


@pytest.mark.slow
@needs_example
def test_it_trains_and_appears_in_the_report(tiny_data_dir: Path, tmp_path: Path):
    from cfnsr.tasks.train import train

    record = train(compose_train([f"fusion={NAME}", "fold=1", "trainer.max_epochs=1", "measure_gflops=false",
                                  "logger=csv"], tiny_data_dir, tmp_path / "run"))
    assert record["status"] == "finished" and record["fusion"] == NAME and record["paper"] is None
    assert (record["fusion_stage"], record["fusion_display"], record["fusion_order"]) == ("Late", "Gated sum", 35)
    runs, skipped = collect_runs([tmp_path / "run"])
    assert not skipped
    (group,) = build_report(runs).groups
    row = group.row(NAME)
    assert (row.label, row.stage, row.n_runs, row.folds, row.order) == ("Gated sum", "Late", 1, [1], 35)
    assert row.war_mean == pytest.approx(100 * record["test"]["war"])
