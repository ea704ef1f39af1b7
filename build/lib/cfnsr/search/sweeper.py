"""hydra-optuna-sweeper's sweeper, extended so that a search can be interrupted and rerun safely.

What it adds to ``OptunaSweeperImpl`` (everything else, sampling and ``study.tell``, is the plugin's):

* every trial job gets ``search.trial=<Optuna trial number>``, which names its run folder
  (``<trial>_<overrides>``) and marks its record; Hydra's job number restarts at 0 on every launch, the trial number
  does not, so a resumed study never writes into a finished trial's folder;
* ``hydra.sweeper.n_trials`` is the study's total: a rerun of the same command runs only the missing trials;
* the SQLite file's folder is created before the study is opened (the plugin opens it before any job runs);
* the per-fusion search space ``search.fusion_space[<fusion.name>]`` is added to ``hydra.sweeper.params``;
* refused: searching over fold, seed, fusion, protocol or the fold scheme, and resuming a study whose stored
  training recipe (the settings it does not search) differs from this command's;
* trials left ``RUNNING`` by a search process that died on this host are marked ``FAIL`` (their folders stay).
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

import numpy as np
import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl
from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.config_checks import ConfigError, check_sweeper
from cfnsr.data.worker_pool import pid_alive
from cfnsr.runs.recipe import recipe_differences, training_recipe
from cfnsr.search.study import INTERRUPTED_ATTR, sqlite_path

log = logging.getLogger(__name__)

# Keys a search must not tune: which data is tested and how it is split, which method, and the search machinery.
FORBIDDEN_KEYS = ("fold", "seed", "fusion", "fusion.name", "protocol", "folds", "experiment", "hparams_search",
                  "test_after_fit", "data.root", "data.cache_dir")
FORBIDDEN_PREFIXES = ("protocol", "folds", "search", "hparams")
RECIPE_ATTR = "cfnsr_recipe"
OWNER_ATTR = "cfnsr_owner"  # "<host>:<pid>" of the search process that asked for the trial


def _forbidden(key: str) -> bool:
    key = key.lstrip("+~")
    return key in FORBIDDEN_KEYS or any(key.startswith(p + ".") or key.startswith(p + "/") for p in FORBIDDEN_PREFIXES)


class TrialSweeperImpl(OptunaSweeperImpl):
    """``OptunaSweeperImpl`` with trial-numbered run folders and resumable totals (see the module docstring)."""

    def _search_params(self, arguments: list[str]) -> DictConfig:
        """``hydra.sweeper.params`` plus the fusion's own space; raise for a fusion without one or a forbidden key."""
        search = self.config.get("search") or {}
        spaces = search.get("fusion_space") or {}
        fusion = self.config.fusion.name
        if fusion not in spaces:  # a new fusion needs no edit here: it gets the shared space only
            log.info(f"search.fusion_space has no entry for fusion={fusion}: searching the shared settings only")
        own = OmegaConf.to_container(spaces[fusion]) if spaces.get(fusion) else {}
        params = OmegaConf.create({**(OmegaConf.to_container(self.params) if self.params else {}), **own})
        swept = [str(k) for k in params] + [
            o.get_key_element() for o in OverridesParser.create().parse_overrides(arguments) if o.is_sweep_override()]
        bad = sorted({k for k in swept if _forbidden(k)})
        if bad:
            raise ConfigError(f"a hyperparameter search must not search over {', '.join(bad)}: one study tunes one "
                              f"fusion on one outer fold (run one search per fold: fold=1, fold=2, ...)")
        return params

    def _recipe(self, searched: list[str]) -> dict[str, Any]:
        """The training recipe of this command without the searched keys: what every trial shares."""
        cfg = OmegaConf.to_container(self.config, resolve=False)
        cfg.pop("hydra", None)
        # ${hydra:runtime.output_dir} has no value in the sweeper; paths.* are no part of a recipe anyway
        cfg.setdefault("paths", {})["output_dir"] = ""
        resolved = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
        return {k: v for k, v in training_recipe(resolved).items()
                if not any(k == s or k.startswith(s + ".") for s in searched)}

    def _prepare_study(self, searched: list[str]) -> None:
        """Open (or create) the study, check it belongs to this command, and size the remaining work."""
        db = sqlite_path(self.storage)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(study_name=self.study_name, storage=self.storage,
                                    directions=self._get_directions(), load_if_exists=True)
        recipe = self._recipe(searched)
        stored = study.user_attrs.get(RECIPE_ATTR)
        if stored is None:
            if study.trials:
                raise ConfigError(f"study {study.study_name!r} in {self.storage} holds {len(study.trials)} trials "
                                  f"of another program (no cfnsr recipe stored); choose another study name")
            study.set_user_attr(RECIPE_ATTR, json.dumps(recipe, sort_keys=True, default=str))
        else:
            diffs = recipe_differences(json.loads(stored), recipe)
            if diffs:
                raise ConfigError(
                    f"study {study.study_name!r} ({self.storage}) was run with other settings than this command "
                    f"(stored vs now):\n  " + "\n  ".join(diffs)
                    + "\nrerun the study's own command to resume it, or start a new study (another "
                      "search.study or hydra.sweep.dir)")
        self._fail_orphans(study)
        # Trials that ran to an end count towards n_trials (failed ones too); interrupted ones are replaced.
        finished = [t for t in study.trials
                    if t.state != optuna.trial.TrialState.RUNNING and not t.user_attrs.get(INTERRUPTED_ATTR)]
        total = self.n_trials
        self.n_trials = max(0, total - len(finished))
        # Hydra job numbers continue after the existing trials (the folders are named by trial number anyway).
        self.job_idx = len(study.trials)
        if study.trials:
            log.info(f"Resuming study {study.study_name}: {len(finished)} finished trials, "
                     f"{self.n_trials} more to reach n_trials={total}")
            self._reseed(len(study.trials))

    def _reseed(self, offset: int) -> None:
        """A seeded sampler restarted on a resumed study would propose the first trials' settings again."""
        seed = getattr(self.config.hydra.sweeper.sampler, "seed", None)
        rng = np.random.RandomState(None if seed is None else (int(seed) + offset) % 2**32)
        for obj in (self.sampler, getattr(self.sampler, "_random_sampler", None)):
            if obj is not None and hasattr(obj, "_rng"):
                obj._rng = np.random.RandomState(rng.randint(2**31))

    def _fail_orphans(self, study: Any) -> None:
        """Mark RUNNING trials of a dead search process on this host as failed (they would never be told)."""
        host = socket.gethostname()
        for t in study.trials:
            owner = t.user_attrs.get(OWNER_ATTR, "")
            if t.state != optuna.trial.TrialState.RUNNING or not owner.startswith(host + ":"):
                continue
            if not pid_alive(int(owner.rsplit(":", 1)[1])):
                log.warning(f"trial {t.number} was left running by a search that ended ({owner}): marked FAIL; "
                            f"a new trial replaces it")
                study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED_ATTR, True)
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)

    def _configure_trials(self, trials: list[Any], search_space_distributions: dict[str, Any],
                          fixed_params: dict[str, Any]) -> list[tuple[str, ...]]:
        overrides = super()._configure_trials(trials, search_space_distributions, fixed_params)
        owner = f"{socket.gethostname()}:{os.getpid()}"
        for t in trials:
            t.set_user_attr(OWNER_ATTR, owner)
        return [(*o, f"search.trial={t.number}") for o, t in zip(overrides, trials, strict=True)]

    def sweep(self, arguments: list[str]) -> None:
        # Refused here, before a study or a trial exists; each job checks again (train.py), for other sweepers.
        check_sweeper(type(self).__name__, self.config.protocol.get("name"), self.config.protocol.get("objective"))
        self.params = self._search_params(arguments)
        swept = [o.get_key_element() for o in OverridesParser.create().parse_overrides(arguments)
                 if o.is_sweep_override()]
        self._prepare_study(searched=[str(k) for k in self.params] + swept)
        super().sweep(arguments)
