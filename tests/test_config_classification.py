"""Every key of the training config is classified (docs/configs.md, "Adding a config key"): recipe, data identity
or execution. A key nobody classified would silently become recipe (splitting report tables and refusing resumes if
it only says how the job ran) or, under ``preprocess``, be dropped from the cache's settings."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from conf_keys import train_keys

from cfnsr.builders.checkpoint_config import PREPROCESS_RUN_OPTIONS
from cfnsr.data.settings import PreprocessSettings
from cfnsr.runs.recipe import EXCLUDED_PREFIXES, EXECUTION_PREFIXES, INIT_PATH_KEYS, matches_prefix, training_recipe
from cfnsr.runs.renames import stored_key

CONFIGS_MD = Path(__file__).resolve().parents[1] / "docs" / "configs.md"
WHERE = ("cfnsr/runs/recipe.py (EXECUTION_PREFIXES / WHERE_PREFIXES / DESCRIPTIVE_PREFIXES / MIRRORED_PREFIXES), "
         "docs/configs.md (a recipe key outside the recipe groups), cfnsr/data/settings.py (a cache setting)")


def documented() -> tuple[tuple[str, ...], set[str]]:
    """(recipe groups, recipe keys outside them) as docs/configs.md lists them."""
    text = CONFIGS_MD.read_text().split("## Adding a config key", 1)[1]
    groups = re.search(r"^Recipe groups[^:]*:(.*?)\.\n", text, re.M | re.S).group(1)
    keys = re.search(r"^Recipe keys outside the recipe groups:\n\n((?:[- ] .*\n)+)", text, re.M).group(1)
    return tuple(re.findall(r"`([\w.]+)`", groups)), set(re.findall(r"`([\w.]+)`", keys))


def unclassified(keys: list[str], groups: tuple[str, ...], recipe_keys: set[str]) -> list[str]:
    """The keys in no class: not excluded from the recipe, not an init path, not under a recipe group, not listed.
    A renamed key is classified under its first name, the name the recipe records (cfnsr.runs.renames)."""
    def classified(k: str) -> bool:
        return (matches_prefix(k, EXCLUDED_PREFIXES) or matches_prefix(k, INIT_PATH_KEYS)
                or matches_prefix(k, groups) or k in recipe_keys)

    return [k for k in keys if not (classified(k) or classified(stored_key(k)))]


def test_every_training_config_key_is_classified():
    groups, recipe_keys = documented()
    keys = sorted(train_keys())
    assert len(keys) > 150 and "trainer.max_epochs" in keys and "fusion.model._target_" in keys
    missing = unclassified(keys, groups, recipe_keys)
    assert not missing, f"config keys in no class: {missing}; classify each in one of: {WHERE}"


def test_an_unclassified_key_is_caught():
    """The check above is not vacuous: a new trainer or data key (what most new options are) lands in no class."""
    groups, recipe_keys = documented()
    assert unclassified(["trainer.profiler", "data.prefetch_factor", "new_flag"], groups, recipe_keys) == [
        "trainer.profiler", "data.prefetch_factor", "new_flag"]
    assert unclassified(["trainer.devices", "fusion.model.new_width", "trainer.max_epochs"], groups, recipe_keys) == []


def test_documented_recipe_keys_exist_and_are_recipe():
    """docs/configs.md's list against the code: each key is in some config and training_recipe keeps it."""
    groups, recipe_keys = documented()
    assert {"fusion", "backbone", "optimizer", "preprocess"} <= set(groups) and len(recipe_keys) >= 10
    flat = train_keys()
    assert not recipe_keys - set(flat), f"docs/configs.md lists keys no config has: {sorted(recipe_keys - set(flat))}"
    nested: dict = {}
    for key in recipe_keys:
        *parents, leaf = key.split(".")
        node = nested
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = "<a value>"  # not a NEUTRAL_VALUES value, which the recipe leaves out on purpose
    kept = {stored_key(k) for k in training_recipe(nested)}  # the recipe records renamed keys under first names
    assert not {stored_key(k) for k in recipe_keys} - kept, f"listed as recipe but excluded: {sorted(recipe_keys - set(kept))}"
    for group in groups:  # a recipe group is not excluded as a whole
        assert not matches_prefix(group, EXCLUDED_PREFIXES), group


def test_every_preprocess_key_is_a_cache_setting_or_a_run_option():
    settings = {f.name for f in dataclasses.fields(PreprocessSettings)}
    keys = {k.split(".", 1)[1] for k in train_keys() if k.startswith("preprocess.")}
    assert keys >= settings  # every cache setting is configurable
    assert not keys - settings - set(PREPROCESS_RUN_OPTIONS), (
        f"preprocess keys neither in PreprocessSettings (cfnsr/data/settings.py) nor run options "
        f"(PREPROCESS_RUN_OPTIONS, cfnsr/builders/checkpoint_config.py): {sorted(keys - settings - set(PREPROCESS_RUN_OPTIONS))}")
    assert not settings & set(PREPROCESS_RUN_OPTIONS)
    for option in PREPROCESS_RUN_OPTIONS:  # a run option is execution in the recipe too
        assert matches_prefix(f"preprocess.{option}", EXECUTION_PREFIXES), option
    for name in settings:  # a cache setting is recipe
        assert not matches_prefix(f"preprocess.{name}", EXCLUDED_PREFIXES), name
