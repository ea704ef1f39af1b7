"""The LightningModule: one training/evaluation loop for every fusion strategy.

Nothing here is model-specific: the fusion model computes its own loss (``model.loss``), so late fusion with
per-stream losses or the multiplicative combination loss need no branch here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.aggregation import SumMetric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassRecall,
)

from cfnsr.runs.checkpoint_files import RunIdentity


def _metrics(num_classes: int) -> MetricCollection:
    # average= is spelled out: MulticlassAccuracy alone defaults to macro, which is UAR, not the paper's accuracy.
    return MetricCollection({
        "war": MulticlassAccuracy(num_classes, average="micro"),
        "uar": MulticlassRecall(num_classes, average="macro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
    })


def _check_clip_count(part: str, counted: int, size: int | None) -> None:
    """More clips counted than the split holds means a sampler repeated clips (Lightning's DistributedSampler pads
    a split to a multiple of the world size); the metrics would then count those twice. Fewer is allowed
    (``limit_val_batches``/``limit_test_batches``)."""
    if size is not None and counted > size:
        raise RuntimeError(f"{part} metrics counted {counted} clips but the {part} split holds {size}: some clips "
                           f"were evaluated twice (a padding distributed sampler?)")


class EmotionModule(pl.LightningModule):
    """Trains ``model`` with its own loss; reports WAR (micro accuracy), UAR (macro recall), macro-F1, confusion.

    Args:
        model: a ``FusionModel``: ``model(video (B,3,T,H,W), audio (B,n_mfcc,L)) -> FusionOutput``.
        optimizer: factory ``params -> torch.optim.Optimizer`` (a Hydra ``_partial_`` target).
        seed: the global RNG is reseeded from (seed, epoch, rank) at each epoch start, so dropout and augmentation
            draws of an epoch do not depend on whether the run was resumed.
        identity: what every checkpoint says about the run (``cfnsr.runs.checkpoint_files.RunIdentity``): written by
            ``on_save_checkpoint``; None (evaluation, tests) writes no cfnsr keys.
        compile: run the forward through ``torch.compile``; the uncompiled module stays the registered child, so
            checkpoints keep their plain keys.
        channels_last: use the channels_last_3d memory format for the video input and the network.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
        num_classes: int,
        seed: int = 0,
        compile: bool = False,
        channels_last: bool = False,
        identity: RunIdentity | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.num_classes = num_classes
        self.seed = seed
        self.channels_last = channels_last
        self.identity = identity
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        # Bypass nn.Module registration: the compiled wrapper must not add "_orig_mod." keys to the state dict.
        object.__setattr__(self, "_forward", torch.compile(self.model) if compile else self.model)
        self.train_war = MulticlassAccuracy(num_classes, average="micro")
        self.val_metrics = _metrics(num_classes)
        self.test_metrics = _metrics(num_classes)
        self.test_confusion = MulticlassConfusionMatrix(num_classes)
        # clips validated this epoch, over all ranks; no NaN check (an int count): it would sync the GPU every batch
        self.val_clips = SumMetric(nan_strategy="disable")
        # The latest test's result in this process, set by on_test_epoch_end; read by cfnsr.tester (which
        # also brings it back to the main process of ddp_spawn).
        self.test_result: dict[str, Any] | None = None
        self._test_clips = 0  # clips this rank tested

    def forward(self, video: Tensor, audio: Tensor):
        """video: normalised float (B, 3, T, H, W) (the data module augments it); audio: (B, n_mfcc, L)."""
        if self.channels_last:
            video = video.contiguous(memory_format=torch.channels_last_3d)
        return self._forward(video, audio)

    # ---------------------------------------------------------------- training
    def on_train_epoch_start(self) -> None:
        torch.manual_seed(self.seed * 1_000_003 + self.current_epoch * 1009 + self.global_rank)

    def _stop_if_not_finite(self, what: str, value: Tensor, batch: dict[str, Tensor], part: str) -> None:
        """A NaN/inf must fail the run (status failed, clips named), never train on or end as "finished"."""
        if bool(torch.isfinite(value).all()):
            return
        stems = self._stems(batch, part)
        raise FloatingPointError(
            f"non-finite {what} at epoch {self.current_epoch + 1}, {part} batch of clips {stems}: check these cache "
            f"entries (python preprocess.py ... preprocess.verify=full) or lower the learning rate")

    def _stems(self, batch: dict[str, Tensor], part: str) -> list[str]:
        stems = getattr(self._loop_dataset(part), "stems", None)  # CachedClips names its clips
        if stems is None or "index" not in batch:
            return ["<unknown>"]
        return [stems[int(i)] for i in batch["index"].tolist()]

    def _loop_dataset(self, part: str) -> Any | None:
        """The dataset of the ``part`` ("train", "val", "test") loader the running loop iterates, as Lightning holds
        it (``trainer.train_dataloader`` etc., whoever supplied the loader); None outside a loop or for a loader
        without a dataset. It names the clips of a bad batch and sizes the split for the clip-count check."""
        trainer = self._trainer
        if trainer is None:
            return None
        loaders = {"train": lambda: trainer.train_dataloader, "val": lambda: trainer.val_dataloaders,
                   "test": lambda: trainer.test_dataloaders}[part]()
        return getattr(loaders, "dataset", None)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self(batch["video"], batch["audio"])
        loss = self.model.loss(out, batch["label"])
        self._stop_if_not_finite("loss", loss, batch, "train")
        self.train_war(out.logits.detach(), batch["label"])
        bs = batch["label"].numel()
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs, sync_dist=True)
        self.log("train/war", self.train_war, on_step=False, on_epoch=True, prog_bar=True, batch_size=bs)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.val_metrics.reset()
        self.val_clips.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self(batch["video"], batch["audio"])
        self._stop_if_not_finite("logits", out.logits, batch, "val")
        bs = batch["label"].numel()
        self.log("val/loss", self.model.loss(out, batch["label"]), on_epoch=True, batch_size=bs, sync_dist=True)
        self.val_metrics.update(out.logits, batch["label"])
        self.val_clips.update(batch["label"].numel())

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()  # all-gathered over ranks by torchmetrics
        _check_clip_count("validation", int(self.val_clips.compute()), self._split_size("val"))
        self.val_clips.reset()
        self.log_dict({f"val/{k}": v for k, v in values.items()}, prog_bar=True, sync_dist=False)
        self.val_metrics.reset()

    # ---------------------------------------------------------------- testing
    def on_test_epoch_start(self) -> None:
        # Start from zero whatever the module carried in: under ddp_spawn each test re-launch unpickles the
        # main process's module, whose metric state came back from rank 0 of the previous launch.
        self.test_metrics.reset()
        self.test_confusion.reset()
        self.test_result = None
        self._test_clips = 0

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        out = self(batch["video"], batch["audio"])
        self._stop_if_not_finite("logits", out.logits, batch, "test")
        self.test_metrics.update(out.logits, batch["label"])
        self.test_confusion.update(out.logits, batch["label"])
        self._test_clips += int(batch["label"].numel())

    def on_test_epoch_end(self) -> None:
        # compute() all-gathers the metric states of every rank, so each rank holds the same result.
        values = {k: float(v) for k, v in self.test_metrics.compute().items()}
        confusion = self.test_confusion.compute().long()
        self.log_dict({f"test/{k}": v for k, v in values.items()})
        self.test_metrics.reset()
        self.test_confusion.reset()
        result = {**values, "n": int(confusion.sum()), "confusion": confusion.tolist(), "ranks": self._rank_shares(),
                  "split_clips": self._split_size("test")}  # fewer than n under limit_test_batches: not a result
        _check_clip_count("test", result["n"], self._split_size("test"))
        self.test_result = result

    def _rank_shares(self) -> list[dict[str, Any]]:
        """Which process tested how many clips: [{rank, node, host, clips}] over all ranks, in rank order."""
        mine = {"rank": self.global_rank, "node": self.trainer.node_rank, "host": socket.gethostname(),
                "clips": self._test_clips}
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return [mine]
        shares: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(shares, mine)
        return shares

    def _split_size(self, part: str) -> int | None:
        ds = self._loop_dataset(part)
        return len(ds) if ds is not None and hasattr(ds, "__len__") else None

    # ---------------------------------------------------------------- optimisation and checkpoints
    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(self.parameters())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Plain Python types only, so the checkpoint loads with torch.load(weights_only=True).
        if self.identity is not None:
            checkpoint.update(self.identity.checkpoint_fields())
