"""Builds the objects of one run from its resolved config: data module, network, Lightning module, trainer.

``train.py`` and ``evaluate.py`` share these builders, so a checkpoint's saved config rebuilds exactly the run
that wrote it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from cfnsr.builders.corpus import build_corpus
from cfnsr.builders.corpus import fold_split as fold_split  # re-exported: the builders' fold split lived here
from cfnsr.builders.init_checks import check_init_source, init_source
from cfnsr.builders.init_runs import find_unimodal_checkpoints
from cfnsr.data.datamodule import EmotionDataModule
from cfnsr.data.settings import PreprocessSettings, settings_from_config
from cfnsr.models.build import build_model, load_backbone_weights, load_kinetics_resnext, load_model_weights
from cfnsr.models.fusion.registry import CONF_DIR
from cfnsr.module import EmotionModule
from cfnsr.runs.checkpoint_files import RunIdentity
from cfnsr.weights_only import read_weights_only

# The data module's wiring, for run configs that do not carry it (datamodule_node).
DATAMODULE_CONF = CONF_DIR / "datamodule" / "default.yaml"


def preprocess_settings(cfg: DictConfig) -> PreprocessSettings:
    """The cache-shaping subset of ``cfg.preprocess`` (``workers``/``force`` are run options, not settings)."""
    return settings_from_config(cfg.preprocess)


def clip_shapes(cfg: DictConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-clip input shapes: video (3, T, S, S) and audio (n_mfcc, L)."""
    return preprocess_settings(cfg).input_shapes()


def datamodule_node(cfg: DictConfig) -> DictConfig:
    """The run's ``datamodule`` node (``conf/datamodule/default.yaml``), or, for a config without one (a checkpoint
    saved before the node existed, or ``evaluate.py``, which drops the saved copy), that file's node wired to
    ``cfg``'s own keys: its interpolations (``${data.batch_size}``, ...) resolve against ``cfg``."""
    node = cfg.get("datamodule")
    if node is not None:
        return node
    run = copy.deepcopy(cfg)
    OmegaConf.set_struct(run, False)
    run.datamodule = OmegaConf.load(DATAMODULE_CONF)
    return run.datamodule


def build_datamodule(cfg: DictConfig) -> EmotionDataModule:
    """The data module of ``cfg.datamodule``; the objects it needs are built here from their own config nodes."""
    # _partial_, then call: Hydra would turn the dataclass arguments (settings, split) into config nodes.
    make = instantiate(datamodule_node(cfg), _partial_=True)
    return make(settings=preprocess_settings(cfg), corpus=build_corpus(cfg), split=fold_split(cfg),
                augment=instantiate(cfg.augment))


def build_module(cfg: DictConfig, identity: RunIdentity | None = None,
                 load_init: bool = True) -> tuple[EmotionModule, dict[str, dict[str, Any]]]:
    """The network (backbone + fusion, optionally initialised from stage-1 checkpoints) in its training module.

    ``identity``: what the module writes into every checkpoint (None: nothing; evaluation). Returns the module and
    its initialisation sources (per part "video"/"audio"/"weights": the checkpoint's path, run id, recipe hash and
    recorded split, ``cfnsr.builders.init_checks``; empty when ``load_init`` is false or nothing was loaded).
    """
    model = build_model(cfg.backbone, cfg.fusion, cfg.data.num_classes)
    init = cfg.init
    init_sources: dict[str, dict[str, Any]] = {}
    if load_init:
        split = fold_split(cfg)
        video, audio = init.video, init.audio
        keys = {"video": "init.video", "audio": "init.audio"}
        if init.get("from_runs"):
            found = find_unimodal_checkpoints(init.from_runs, split.test_actors, split.val_actors, fold=cfg.fold,
                                              seed=cfg.seed, dataset=cfg.data.name, backbone=cfg.backbone.name)
            keys = {m: keys[m] if init.get(m) else f"init.from_runs ({m}_only run)" for m in keys}
            video, audio = video or found.get("video"), audio or found.get("audio")
        if init.get("kinetics"):
            load_kinetics_resnext(model.video, init.kinetics)
        video = video if "video" in model.modalities else None  # e.g. from_runs found both for a unimodal run
        audio = audio if "audio" in model.modalities else None
        # Every cfnsr checkpoint that initialises the run is checked against its split before its weights load;
        # each file is read once, so the weights loaded are the bytes whose split was checked.
        loaded: dict[str, Any] = {}
        for part, path, key in (("video", video, keys["video"]), ("audio", audio, keys["audio"]),
                                ("weights", init.get("weights"), "init.weights")):
            if path:
                loaded.setdefault(str(path), read_weights_only(path))
                init_sources[part] = init_source(path, loaded[str(path)])
                check_init_source(init_sources[part], key, split, cfg.protocol.name,
                                  bool(init.get("allow_unknown_split", False)))
        if video or audio:
            load_backbone_weights(model, video=video, audio=audio, loaded=loaded)
        if init.get("weights"):  # a whole model of the same architecture, e.g. a finished run to train further
            load_model_weights(model, init.weights, loaded=loaded)
    speed = cfg.get("speed") or {}  # absent from configs saved before model.compile existed: both off
    module = EmotionModule(
        model=model,
        optimizer=instantiate(cfg.optimizer),
        num_classes=cfg.data.num_classes,
        seed=cfg.seed,
        compile=bool(speed.get("compile")),
        channels_last=bool(speed.get("channels_last")),
        identity=identity,
    )
    return module, init_sources


def build_trainer(cfg: DictConfig, output_dir: Path, callbacks: list[Any], loggers: list[Any] | bool) -> pl.Trainer:
    # enable_checkpointing=False: Lightning's default ModelCheckpoint would write a second set of files (under the
    # logger's folder); cfnsr.callbacks.run_checkpoints.RunCheckpoints writes the run's checkpoints.
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers, default_root_dir=str(output_dir),
                       enable_checkpointing=False)
