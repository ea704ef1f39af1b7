"""The sweeper of ``hparams_search=optuna``: Optuna's ask/tell around Hydra's launcher, one worker per process.

Every process that runs the search command is a worker on the study named by ``hydra.sweeper.study_name`` in
``hydra.sweeper.storage`` (default ``<sweep dir>/optuna.journal``): it asks for trials, launches them through the
configured Hydra launcher, and tells their results, until the study holds ``n_trials`` trials that count (below).
No process has to babysit the sweep: the same command started in several processes or SLURM jobs pulls from one
study, and any of them may stop; rerunning the command resumes the study.

* ``n_trials`` is the study's **total**. A trial counts when it is COMPLETE, PRUNED or FAIL (failed by itself), or
  RUNNING with a live owner. The owner is the worker process that asked for it (``<host>:<pid>``): on the same host it
  is alive while its pid is; a worker on another host writes a heartbeat (a trial user attribute) every
  ``HEARTBEAT_S`` seconds and is taken for dead ``STALE_S`` seconds after the last one. A RUNNING trial of a dead
  owner is marked FAIL with ``cfnsr_interrupted`` and does not count: a new trial replaces it.
* Counting and asking happen under one lock file next to the storage (``<sweep dir>/optuna.ask.lock``, Optuna's
  NFS-safe ``JournalFileOpenLock``), so several workers never ask for more than the missing trials.
* Every trial job gets ``search.trial=<Optuna trial number>``, which names its run folder (``<trial>_<overrides>``)
  and marks its record; a resumed study never writes into a finished trial's folder.
* The job reports its validation objective per epoch to the study and raises when the pruner
  (``search.pruner``) prunes it (:class:`cfnsr.callbacks.trial_report.TrialReport`); its record then says
  ``"status": "pruned"`` and the worker tells the study PRUNED.
* Refused: searching over fold, seed, fusion, protocol or the fold scheme, and resuming a study whose stored training
  recipe (the settings it does not search) differs from this command's.
* A seeded sampler is seeded with ``seed + <number of trials in the study>`` for each ask, so resumed and parallel
  workers do not propose the same settings again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.config_checks import ConfigError, check_sweeper
from cfnsr.data.worker_pool import pid_alive
from cfnsr.runs.recipe import recipe_differences, training_recipe
from cfnsr.runs.record import FILENAME as RECORD_FILE
from cfnsr.runs.study_storage import is_url, open_storage, study_storage
from cfnsr.search.space import override_value, parse_space
from cfnsr.search.study import INTERRUPTED_ATTR

log = logging.getLogger(__name__)

# Keys a search must not tune: which data is tested and how it is split, which method, and the search machinery.
FORBIDDEN_KEYS = ("fold", "seed", "fusion", "fusion.name", "protocol", "folds", "experiment", "hparams_search",
                  "test_after_fit", "data.root", "data.cache_dir")
FORBIDDEN_PREFIXES = ("protocol", "folds", "search", "hparams")
RECIPE_ATTR = "cfnsr_recipe"
OWNER_ATTR = "cfnsr_owner"  # "<host>:<pid>" of the worker that asked for the trial
HEARTBEAT_ATTR = "cfnsr_heartbeat"  # unix time of the owner's last sign of life
HEARTBEAT_S = 60
STALE_S = 600  # an owner on another host silent this long is dead (a trial's epoch never blocks the heartbeat)
LOCK_NAME = "optuna.ask.lock"


def _forbidden(key: str) -> bool:
    key = key.lstrip("+~")
    return key in FORBIDDEN_KEYS or any(key.startswith(p + ".") or key.startswith(p + "/") for p in FORBIDDEN_PREFIXES)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(trial: Any, now: float | None = None) -> bool:
    """Whether the worker that asked for a RUNNING trial still runs (see the module docstring)."""
    owner = str(trial.user_attrs.get(OWNER_ATTR, ""))
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return pid_alive(int(pid))
    beat = trial.user_attrs.get(HEARTBEAT_ATTR)
    if beat is None:  # no owner recorded (another program's trial): judged by when it started
        started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
        return (now or time.time()) - started < STALE_S
    return (now or time.time()) - float(beat) < STALE_S


def fail_orphans(study: Any) -> list[int]:
    """Mark RUNNING trials of dead owners FAIL (interrupted); return their numbers."""
    import optuna

    failed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if owner_alive(t):
            continue
        log.warning(f"trial {t.number} was left running by a worker that ended "
                    f"({t.user_attrs.get(OWNER_ATTR, 'owner unknown')}): marked FAIL; a new trial replaces it")
        study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED_ATTR, True)
        try:
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        except (ValueError, RuntimeError):  # its owner finished it meanwhile
            pass
        failed.append(t.number)
    return failed


def counted_trials(study: Any) -> list[Any]:
    """The trials that count towards ``n_trials``: COMPLETE, PRUNED, FAIL (not interrupted), RUNNING (live)."""
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED_ATTR)) or (
                t.state == TrialState.RUNNING and owner_alive(t)):
            out.append(t)
    return out


class AskLock:
    """The lock file around count-and-ask (Optuna's ``JournalFileOpenLock``: ``O_EXCL`` create, NFS-safe)."""

    def __init__(self, path: Path) -> None:
        from optuna.storages.journal import JournalFileOpenLock

        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = JournalFileOpenLock(str(path))

    def __enter__(self) -> AskLock:
        self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


class Heartbeat:
    """While a batch runs: the owner's heartbeat on each of its trials every ``HEARTBEAT_S`` seconds."""

    def __init__(self, trials: Sequence[Any]) -> None:
        self.trials = list(trials)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cfnsr-search-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            for trial in self.trials:
                try:
                    trial.set_user_attr(HEARTBEAT_ATTR, time.time())
                except Exception:  # a finished trial takes no attribute; the others still get theirs
                    log.debug(f"heartbeat of trial {trial.number} not written", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


class TrialSweeper:
    """A worker of one study (module docstring); configured by ``hydra.sweeper.*`` (conf/hparams_search/optuna.yaml)."""

    def __init__(self, storage: str | None, study_name: str, direction: str, n_trials: int, n_jobs: int,
                 max_failure_rate: float, sampler: DictConfig | None, params: DictConfig | None) -> None:
        if n_trials < 0 or n_jobs < 1:
            raise ConfigError(f"hydra.sweeper.n_trials={n_trials}, n_jobs={n_jobs}: need n_trials >= 0, n_jobs >= 1")
        self.storage_setting, self.study_name, self.direction = storage, str(study_name), str(direction)
        self.storage_name = ""
        self.n_trials, self.n_jobs, self.max_failure_rate = int(n_trials), int(n_jobs), float(max_failure_rate)
        self.sampler_cfg, self.params = sampler, params
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        # Hydra sets its config for each job, not for the sweeper: ${hydra:...} in the task config (the trial
        # report's sweep folder) must resolve here too, for the recipe.
        HydraConfig.instance().set_config(config)
        self.storage_name = study_storage(self.storage_setting, config.hydra.sweep.dir)
        # Hydra instantiated the sampler already; a fresh one per ask (seeded per trial) is built from its config.
        self.sampler_cfg = config.hydra.sweeper.get("sampler")
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    # ---- the search space and the recipe -------------------------------------------------------------------

    def _search_params(self, arguments: list[str]) -> tuple[dict[str, Any], list[str]]:
        """(distributions, fixed overrides) from ``hydra.sweeper.params``, the fusion's own space and the command
        line; raise for a forbidden key."""
        search = self.config.get("search") or {}
        spaces = search.get("fusion_space") or {}
        fusion = self.config.fusion.name
        if fusion not in spaces:  # a new fusion needs no edit here: it gets the shared space only
            log.info(f"search.fusion_space has no entry for fusion={fusion}: searching the shared settings only")
        own = OmegaConf.to_container(spaces[fusion]) if spaces.get(fusion) else {}
        params = {**(OmegaConf.to_container(self.params) if self.params else {}), **own}
        swept = [str(k) for k in params] + [
            o.get_key_element() for o in OverridesParser.create().parse_overrides(arguments) if o.is_sweep_override()]
        bad = sorted({k for k in swept if _forbidden(k)})
        if bad:
            raise ConfigError(f"a hyperparameter search must not search over {', '.join(bad)}: one study tunes one "
                              f"fusion on one outer fold (run one search per fold: fold=1, fold=2, ...)")
        return parse_space(params, arguments)

    def _recipe(self, searched: list[str]) -> dict[str, Any]:
        """The training recipe of this command without the searched keys: what every trial shares."""
        cfg = OmegaConf.to_container(self.config, resolve=False)
        cfg.pop("hydra", None)
        # ${hydra:runtime.output_dir} has no value in the sweeper; paths.* are no part of a recipe anyway
        cfg.setdefault("paths", {})["output_dir"] = ""
        resolved = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
        return {k: v for k, v in training_recipe(resolved).items()
                if not any(k == s or k.startswith(s + ".") for s in searched)}

    def _open_study(self, searched: list[str]) -> Any:
        """Open (or create) the study and check that it belongs to this command."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=self.study_name, storage=open_storage(self.storage_name),
                                    direction=self.direction, load_if_exists=True)
        recipe = self._recipe(searched)
        with AskLock(self._lock_path()):  # two workers starting together: one stores the recipe, the other reads it
            stored = study.user_attrs.get(RECIPE_ATTR)
            if stored is None and not study.trials:
                study.set_user_attr(RECIPE_ATTR, json.dumps(recipe, sort_keys=True, default=str))
                return study
        if stored is None:
            if study.trials:
                raise ConfigError(f"study {study.study_name!r} in {self.storage_name} holds {len(study.trials)} "
                                  f"trials of another program (no cfnsr recipe stored); choose another study name")
        else:
            diffs = recipe_differences(json.loads(stored), recipe)
            if diffs:
                raise ConfigError(
                    f"study {study.study_name!r} ({self.storage_name}) was run with other settings than this "
                    f"command (stored vs now):\n  " + "\n  ".join(diffs)
                    + "\nrerun the study's own command to resume it, or start a new study (another "
                      "search.study or hydra.sweep.dir)")
        return study

    def _lock_path(self) -> Path:
        if is_url(self.storage_name):  # a database: the lock lives in the sweep folder, which every worker shares
            return Path(self.config.hydra.sweep.dir).resolve() / LOCK_NAME
        return Path(self.storage_name).resolve().parent / LOCK_NAME

    # ---- ask, launch, tell ---------------------------------------------------------------------------------

    def _ask(self, study: Any, space: dict[str, Any]) -> list[Any]:
        """Under the lock: fail orphans, count, and ask for at most ``n_jobs`` of the missing trials."""
        with AskLock(self._lock_path()):
            fail_orphans(study)
            counted = len(counted_trials(study))
            missing = self.n_trials - counted
            if missing <= 0:
                return []
            trials = []
            for _ in range(min(self.n_jobs, missing)):
                study.sampler = self._sampler(len(study.get_trials(deepcopy=False)))
                trial = study.ask(fixed_distributions=space)
                trial.set_user_attr(OWNER_ATTR, owner_id())
                trial.set_user_attr(HEARTBEAT_ATTR, time.time())
                trials.append(trial)
            log.info(f"study {study.study_name}: {counted} trials counted of n_trials={self.n_trials}; running "
                     f"trial{'s' if len(trials) > 1 else ''} {', '.join(str(t.number) for t in trials)}")
            return trials

    def _sampler(self, offset: int) -> Any:
        if self.sampler_cfg is None:
            return None
        seed = self.sampler_cfg.get("seed")
        if seed is None:
            return instantiate(self.sampler_cfg)
        return instantiate(self.sampler_cfg, seed=(int(seed) + offset) % 2**32)

    @staticmethod
    def _job_status(ret: JobReturn) -> str | None:
        """The trial job's record status (``finished``, ``failed``, ``pruned``...), None when it wrote none."""
        out = None
        if ret.hydra_cfg is not None:
            out = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir", default=None)
        if out is None:
            return None
        try:
            return json.loads((Path(out) / RECORD_FILE).read_text()).get("status")
        except (OSError, ValueError, AttributeError):
            return None

    def _tell(self, study: Any, trial: Any, ret: JobReturn) -> str:
        import optuna
        from optuna.trial import TrialState

        value = ret._return_value if ret.status == JobStatus.COMPLETED else None
        if ret.status != JobStatus.COMPLETED:
            log.error(f"trial {trial.number} failed: {ret._return_value!r}")
        status = self._job_status(ret)
        try:
            if status == "pruned":
                study.tell(trial, state=TrialState.PRUNED)
                return "PRUNED"
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                study.tell(trial, float(value))
                return "COMPLETE"
            study.tell(trial, state=TrialState.FAIL)
            return "FAIL"
        except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError) as exc:
            # another worker judged this one dead (a stale heartbeat) and failed the trial meanwhile
            log.warning(f"trial {trial.number}: result not told ({exc})")
            return "FAIL"

    def sweep(self, arguments: list[str]) -> None:
        assert self.config is not None and self.launcher is not None
        # Refused here, before a study or a trial exists; each job checks again (train.py), for other sweepers.
        check_sweeper(type(self).__name__, self.config.protocol.get("name"), self.config.protocol.get("objective"))
        space, fixed = self._search_params(arguments)
        swept = [o.get_key_element() for o in OverridesParser.create().parse_overrides(arguments)
                 if o.is_sweep_override()]
        study = self._open_study(searched=sorted({*space, *swept}))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        existing = len(counted_trials(study))
        if existing:
            log.info(f"Resuming study {study.study_name}: {existing} trials counted, "
                     f"{max(0, self.n_trials - existing)} more to reach n_trials={self.n_trials}")
        told: dict[str, int] = {}
        while True:
            trials = self._ask(study, space)
            if not trials:
                break
            batch = [[*fixed, *(f"{k}={override_value(v)}" for k, v in t.params.items()), f"search.trial={t.number}"]
                     for t in trials]
            with Heartbeat(trials):
                returns = self.launcher.launch(batch, initial_job_idx=trials[0].number)
            for trial, ret in zip(trials, returns, strict=True):
                state = self._tell(study, trial, ret)
                told[state] = told.get(state, 0) + 1
            done = sum(told.values())
            if told.get("FAIL", 0) / done > self.max_failure_rate:
                raise RuntimeError(f"{told['FAIL']} of {done} trials of this worker failed, above "
                                   f"hydra.sweeper.max_failure_rate={self.max_failure_rate}")
        log.info(f"study {study.study_name}: n_trials={self.n_trials} reached; this worker ran "
                 f"{sum(told.values())} trials ({', '.join(f'{n} {s}' for s, n in sorted(told.items())) or 'none'})")
