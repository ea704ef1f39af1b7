"""Build a fusion model from its configs, and load pre-trained backbone weights into it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from torch import Tensor, nn

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.base import FusionModel
from cfnsr.weights_only import read_weights_only

StateDict = Mapping[str, Tensor]


def build_model(backbone_cfg: DictConfig, fusion_cfg: DictConfig, num_classes: int) -> FusionModel:
    """Instantiate the backbones the fusion needs (``backbone_cfg.video`` / ``.audio``), then the fusion model.

    ``fusion_cfg.model`` holds the fusion class (``_target_``) and its hyperparameters; the backbones and
    ``num_classes`` are passed to it as arguments.
    """
    fusion_cls = get_class(fusion_cfg.model._target_)
    backbones = {m: instantiate(backbone_cfg[m], num_classes=num_classes, _convert_="all")
                 for m in fusion_cls.modalities}
    # _partial_ keeps the modules out of the config; _convert_ hands the class plain lists and dicts.
    make = instantiate(fusion_cfg.model, _partial_=True, _convert_="all")
    return make(video=backbones.get("video"), audio=backbones.get("audio"), num_classes=num_classes)


def load_backbone_weights(model: FusionModel, video: str | Path | None = None,
                          audio: str | Path | None = None, loaded: Mapping[str, Any] | None = None) -> None:
    """Load each backbone from a unimodal checkpoint, leaving every fusion-specific weight as it is.

    A checkpoint is a Lightning ``.ckpt`` (keys ``model.video.*`` / ``model.audio.*`` under ``state_dict``)
    or a plain state dict (keys ``video.*`` of a whole model, or the backbone's own keys). Head weights are
    skipped when the fusion model has dropped that backbone's head. Raises ValueError listing the
    missing, unexpected and mis-shaped keys if the checkpoint does not fit. ``loaded``: checkpoints already read,
    by path (the ones whose split was checked: the weights loaded are those very bytes, read once).
    """
    for modality, path in (("video", video), ("audio", audio)):
        if path is None:
            continue
        backbone: Backbone = getattr(model, modality)
        state = _strip_prefix(_read_state_dict(path, loaded), (f"model.{modality}.", f"{modality}."))
        if backbone.head is None:
            state = {k: v for k, v in state.items() if not k.startswith(f"{backbone.head_name}.")}
        _load_exactly(backbone, state, f"{modality} weights from {path}")


def load_kinetics_resnext(backbone: Backbone, path: str | Path) -> None:
    """Load a kenshohara/3D-ResNets-PyTorch release (``{"state_dict": {"module.conv1.weight": ...}, "arch": ...}``).

    The DataParallel ``module.`` prefix is removed. The classifier ``fc`` is kept as initialised when its
    class count differs (Kinetics has 400). Raises ValueError listing the keys that do not fit.
    """
    state = _strip_prefix(_read_state_dict(path), ("module.",))
    own = backbone.state_dict()
    head = f"{backbone.head_name}."
    fc_weight = f"{head}weight"
    if fc_weight not in own or (fc_weight in state and state[fc_weight].shape != own[fc_weight].shape):
        state = {k: v for k, v in state.items() if not k.startswith(head)}
        state |= {k: v for k, v in own.items() if k.startswith(head)}  # the head stays as initialised
    _load_exactly(backbone, state, f"Kinetics weights from {path}")


def load_model_weights(model: FusionModel, path: str | Path, loaded: Mapping[str, Any] | None = None) -> None:
    """Load every weight of ``model`` from a cfnsr checkpoint (``model.*`` keys) or a plain state dict of the model.

    The optimiser state is not restored: this starts a new run from trained weights. Raises ValueError listing the
    keys that do not fit (another backbone or fusion). ``loaded``: as for :func:`load_backbone_weights`.
    """
    state = _strip_prefix(_read_state_dict(path, loaded), ("model.",))
    _load_exactly(model, state, f"model weights from {path}")


def _read_state_dict(path: str | Path, loaded: Mapping[str, Any] | None = None) -> dict[str, Tensor]:
    """A state dict from a plain ``torch.save`` of one, or from the ``state_dict`` entry of a checkpoint (taken
    from ``loaded`` when the file was read already)."""
    if loaded is not None and str(path) in loaded:
        checkpoint = loaded[str(path)]
    else:
        checkpoint = read_weights_only(path)  # FileNotFoundError / WeightsFileError (a ValueError) naming the file
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: not a state dict or checkpoint (found {type(checkpoint).__name__})")
    return dict(checkpoint.get("state_dict", checkpoint))


def _strip_prefix(state: StateDict, prefixes: tuple[str, ...]) -> dict[str, Tensor]:
    """Keep the keys under the first prefix that any key has, without it; unchanged if none has one."""
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)


def _load_exactly(module: nn.Module, state: StateDict, what: str) -> None:
    """load_state_dict that fails with every key problem listed.

    BatchNorm's ``num_batches_tracked`` may be absent (checkpoints from PyTorch < 0.4.1 lack it).
    """
    own = module.state_dict()
    missing = sorted(k for k in own.keys() - state.keys() if not k.endswith("num_batches_tracked"))
    unexpected = sorted(state.keys() - own.keys())
    mismatched = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                        for k in own.keys() & state.keys() if state[k].shape != own[k].shape)
    if missing or unexpected or mismatched:
        raise ValueError(
            f"cannot load {what} into {type(module).__name__}:\n"
            f"  missing keys {_first(missing)}\n"
            f"  unexpected keys {_first(unexpected)}\n"
            f"  shape mismatches {_first(mismatched)}"
        )
    module.load_state_dict(state, strict=False)


def _first(items: list[str], limit: int = 20) -> str:
    """'(count): [the first `limit` items]', so a wholly wrong checkpoint gives a readable message."""
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"({len(items)}): {items[:limit]}{more}"
