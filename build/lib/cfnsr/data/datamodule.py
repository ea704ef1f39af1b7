"""LightningDataModule over the preprocessed cache: fold split -> datasets -> loaders.

Clips travel as uint8 frames (4x smaller than float) and are augmented and normalised on the device
(``on_after_batch_transfer`` with ``cfnsr.data.augment``), so a loader worker only copies arrays out of
memory-mapped ``.npy`` files, or nothing at all when the split is resident in accelerator memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from cfnsr.data.augment import ClipAugment
from cfnsr.data.cache import CacheError, cached_clips, load_clip, verify_entry
from cfnsr.data.folds import Split
from cfnsr.data.missing import remove_per_clip
from cfnsr.data.prepare import prepare_corpus
from cfnsr.data.ravdess import av_speech_names, parse_name
from cfnsr.data.settings import PreprocessSettings, check_cache

STORAGES = ("mmap", "memory", "device")


class CachedClips(Dataset):
    """Clips of the cache, by stem.

    Item: ``{"video": uint8 (T, H, W, 3), "audio": float32 (n_mfcc, L), "label": int64, "actor": int64}``.
    Storage decides where the arrays live:
    * ``mmap``: each item is copied out of memory-mapped ``.npy`` files (loader workers parallelise this);
    * ``memory``: all clips are read once into two host tensors (RAVDESS at 30x224x224 is ~6.5 GB uint8);
    * ``device``: as ``memory``, but items carry only ``"index"``; the data module gathers the batch from a copy of
      the tensors kept in accelerator memory (see ``RavdessDataModule.on_after_batch_transfer``).
    """

    def __init__(self, cache_dir: str | Path, stems: list[str], storage: str = "mmap") -> None:
        if storage not in STORAGES:
            raise ValueError(f"data.storage={storage!r}: expected one of {STORAGES}")
        self.cache_dir = Path(cache_dir)
        self.stems = stems
        self.storage = storage
        names = [parse_name(s) for s in stems]
        self.labels = torch.tensor([n.label for n in names], dtype=torch.long)
        self.actors = torch.tensor([n.actor for n in names], dtype=torch.long)
        self.video: torch.Tensor | None = None
        self.audio: torch.Tensor | None = None
        if storage != "mmap" and stems:
            clips = [load_clip(self.cache_dir, s, mmap=True) for s in stems]
            for stem, (_, a) in zip(stems, clips, strict=True):
                _check_finite(self.cache_dir, stem, a)
            self.video = torch.from_numpy(np.stack([v for v, _ in clips]))
            self.audio = torch.from_numpy(np.stack([a for _, a in clips]))

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        # "index" travels with every batch, so a failing batch can name its clips (self.stems[index]).
        item = {"label": self.labels[i], "actor": self.actors[i], "index": torch.tensor(i)}
        if self.storage == "device":
            return item
        if self.video is not None:
            return {**item, "video": self.video[i], "audio": self.audio[i]}
        v, a = load_clip(self.cache_dir, self.stems[i], mmap=True)
        _check_finite(self.cache_dir, self.stems[i], a)
        return {**item, "video": torch.from_numpy(np.ascontiguousarray(v)),
                "audio": torch.from_numpy(np.ascontiguousarray(a))}


def _check_finite(cache_dir: Path, stem: str, mfcc: np.ndarray) -> None:
    if not np.isfinite(mfcc).all():
        bad = int((~np.isfinite(mfcc)).sum())
        raise CacheError(f"cache entry {Path(cache_dir) / 'clips' / stem}: mfcc.npy holds {bad} non-finite value(s); "
                         f"rebuild it with `python preprocess.py ... preprocess.verify=full`")


def expected_clips(actors: list[int] | tuple[int, ...], generate: dict[str, Any] | None) -> dict[int, list[str]]:
    """The clip stems each actor should have in the cache: RAVDESS's 60 full-AV speech clips per actor, or the
    clips the synthetic generator's settings select."""
    if generate:
        from cfnsr.data.synthetic import make_config, selected_names

        names = [n for n in selected_names(make_config(**generate)) if n.actor in set(actors)]
    else:
        names = [n for a in actors for n in av_speech_names(a)]
    out: dict[int, list[str]] = {a: [] for a in actors}
    for n in names:
        out[n.actor].append(n.stem)
    return out


class UnpaddedDistributedSampler(DistributedSampler):
    """Evaluation sampler that gives every clip to exactly one rank (rank r gets r, r+W, ...).

    Lightning's default DistributedSampler pads the set by repeating clips so that all ranks have equal length,
    which would count some test clips twice in the metrics. Subclassing DistributedSampler stops Lightning from
    replacing it.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.num_samples = len(range(rank, len(dataset), num_replicas))

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples


class RavdessDataModule(pl.LightningDataModule):
    """Train/val/test loaders for one fold of a preprocessed RAVDESS-layout cache.

    ``prepare_data`` (run by Lightning once per node) makes the synthetic corpus if ``generate`` is given and
    ``root`` does not exist, then preprocesses ``root`` into ``cache_dir``; both resume, so re-running is cheap.
    The training order is a function of (seed, epoch) only (a seeded DistributedSampler, also on one device), so
    a run resumed from an epoch-end checkpoint sees the same batches as an uninterrupted one.
    """

    def __init__(
        self,
        root: str | Path,
        cache_dir: str | Path,
        settings: PreprocessSettings,
        split: Split,
        batch_size: int,
        augment: ClipAugment,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        storage: str = "mmap",
        seed: int = 0,
        generate: dict[str, Any] | None = None,
        preprocess_workers: int = 2,
        preprocess_force: bool = False,
        preprocess_options: dict[str, Any] | None = None,
        allow_missing_clips: bool = False,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.generate = generate
        self.preprocess_workers = preprocess_workers
        self.preprocess_force = preprocess_force
        self.preprocess_options = dict(preprocess_options or {})
        self.allow_missing_clips = allow_missing_clips
        self._prepared = False
        self.cache_dir = Path(cache_dir)
        self.settings = settings
        self.split = split
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.storage = storage
        self.augment = augment
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.seed = seed
        self.datasets: dict[str, CachedClips] = {}

    def prepare_data(self) -> None:
        if self._prepared:
            return
        prepare_corpus(self.root, self.cache_dir, self.settings, generate=self.generate,
                       workers=self.preprocess_workers, force=self.preprocess_force, **self.preprocess_options)
        self._prepared = True

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        check_cache(self.cache_dir, self.settings)
        stems = cached_clips(self.cache_dir)
        by_actor: dict[int, list[str]] = {}
        for stem in stems:
            by_actor.setdefault(parse_name(stem).actor, []).append(stem)
        # Cheap facts of every entry (files, sizes, format); preprocess.verify=full also checks their checksums.
        broken = [(stem, why) for stem in stems if (why := verify_entry(self.cache_dir, stem)) is not None]
        if broken:
            raise CacheError(f"{self.cache_dir}: {len(broken)} broken cache entr{'y' if len(broken) == 1 else 'ies'}: "
                             + "; ".join(f"{s}: {w}" for s, w in broken[:5])
                             + ("; ..." if len(broken) > 5 else "")
                             + " - re-run preprocessing to rebuild them (python preprocess.py ...)")
        problems = []
        for part, actors in (("train", self.split.train_actors), ("val", self.split.val_actors),
                             ("test", self.split.test_actors)):
            chosen = [s for a in actors for s in by_actor.get(a, [])]
            expected = expected_clips(actors, self.generate)
            have = set(chosen)
            missing = {a: [s for s in stems if s not in have] for a, stems in expected.items()}
            missing = {a: m for a, m in missing.items() if m}
            if missing:
                n_missing = sum(map(len, missing.values()))
                detail = "; ".join(
                    f"actor {a}: {'all ' + str(len(m)) + ' clips' if len(m) == len(expected[a]) else ', '.join(m[:4])}"
                    + (" ..." if 4 < len(m) < len(expected[a]) else "") for a, m in sorted(missing.items()))
                problems.append(f"{part} split (actors {list(actors)}): {n_missing} of "
                                f"{sum(map(len, expected.values()))} expected clips missing ({detail})")
            if not chosen:
                raise CacheError(f"{self.cache_dir}: no cached clips for the {part} actors {list(actors)}; "
                                 f"the cache holds actors {sorted(by_actor)}")
            self.datasets[part] = CachedClips(self.cache_dir, chosen, storage=self.storage)
        if problems and not self.allow_missing_clips:
            self.datasets = {}
            raise CacheError(
                f"{self.cache_dir}: the cache lacks clips the fold scheme needs:\n  " + "\n  ".join(problems)
                + f"\n(see {self.cache_dir / 'preprocess_report.json'} for why clips were skipped; re-run "
                  f"preprocessing to complete an interrupted corpus, or set data.allow_missing_clips=true to "
                  f"train on what there is)")
        for problem in problems:
            print(f"WARNING (data.allow_missing_clips=true): {problem}")

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def _loader(self, dataset: Dataset, batch_size: int, sampler: DistributedSampler, drop_last: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            drop_last=drop_last,
            persistent_workers=self.num_workers > 0,
            # Its own generator: creating an iterator would otherwise draw a worker seed from the global RNG,
            # at a point in the epoch that differs between a resumed and an uninterrupted run.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        world, rank = self._world()
        ds = self.datasets["train"]
        sampler = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=self.seed)
        # A final batch of one clip would break BatchNorm in training; drop it only in that case.
        per_rank = len(sampler)
        return self._loader(ds, self.batch_size, sampler, drop_last=per_rank % self.batch_size == 1)

    def val_dataloader(self) -> DataLoader:
        world, rank = self._world()
        ds = self.datasets["val"]
        return self._loader(ds, self.eval_batch_size, UnpaddedDistributedSampler(ds, world, rank), False)

    def test_dataloader(self) -> DataLoader:
        world, rank = self._world()
        ds = self.datasets["test"]
        return self._loader(ds, self.eval_batch_size, UnpaddedDistributedSampler(ds, world, rank), False)

    # ---------------------------------------------------------------- on the device
    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        """uint8 clips -> augmented (training only), normalised float ``(B, 3, T, H, W)``; audio as float; in
        training, ``augment.modality_dropout`` then removes one modality of some clips (``ClipAugment``)."""
        if "video" not in batch:  # device storage: the batch holds indices into the resident split
            batch = {**batch, **self._gather(batch["index"])}
        training = self.trainer is not None and self.trainer.training
        self.augment.train(training)
        video, audio = self.augment(batch["video"]), batch["audio"].float()
        masks = self.augment.modality_dropout_masks(video.shape[0]) if training else None
        if masks is not None:  # augment.modality_dropout: one modality removed per hit clip (cfnsr.data.missing)
            video, audio = remove_per_clip(video, audio, masks[0].to(video.device), masks[1].to(video.device))
        return {**batch, "video": video, "audio": audio}

    def _gather(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        part = self._current_part()
        if part not in self._on_device:  # first batch of this split: copy it to the accelerator once
            ds = self.datasets[part]
            self._on_device[part] = (ds.video.to(index.device), ds.audio.to(index.device))
        video, audio = self._on_device[part]
        return {"video": video[index], "audio": audio[index]}

    def _current_part(self) -> str:
        t = self.trainer
        if t.training:
            return "train"
        if t.sanity_checking or t.validating:
            return "val"
        return "test"
