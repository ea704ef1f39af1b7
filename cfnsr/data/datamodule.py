"""LightningDataModule over the preprocessed cache: fold split -> datasets -> loaders.

Clips travel as uint8 frames (4x smaller than float) and are augmented and normalised on the device
(``on_after_batch_transfer`` with ``cfnsr.data.augment``), so a loader worker only copies arrays out of
memory-mapped ``.npy`` files, or nothing at all when the split is resident in accelerator memory.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from cfnsr.data import source_identity as identity
from cfnsr.data.augment import ClipAugment
from cfnsr.data.cache import CacheError, cached_clips, check_entry, entry_dir, load_clip, load_meta
from cfnsr.data.corpus import Corpus, Speaker, meta_label_speaker
from cfnsr.data.folds import Split
from cfnsr.data.missing import remove_per_clip
from cfnsr.data.settings import PreprocessSettings, check_cache

STORAGES = ("mmap", "memory", "device")


class CachedClips(Dataset):
    """Clips of the cache, by stem.

    Item: ``{"video": uint8 (T, H, W, 3), "audio": float32 (n_mfcc, L), "label": int64, "actor": int64}``.
    Storage decides where the arrays live:
    * ``mmap``: each item is copied out of memory-mapped ``.npy`` files (loader workers parallelise this);
    * ``memory``: all clips are read once into two host tensors (RAVDESS at 30x224x224 is ~6.5 GB uint8);
    * ``device``: as ``memory``, but items carry only ``"index"``; the data module gathers the batch from a copy of
      the tensors kept in accelerator memory (see ``EmotionDataModule.on_after_batch_transfer``).
    """

    def __init__(self, cache_dir: str | Path, stems: list[str], storage: str = "mmap",
                 labels: dict[str, tuple[int, Speaker]] | None = None) -> None:
        if storage not in STORAGES:
            raise ValueError(f"data.storage={storage!r}: expected one of {STORAGES}")
        self.cache_dir = Path(cache_dir)
        self.stems = stems
        self.storage = storage
        # label and speaker come from each entry's meta.json (written by the corpus at preprocessing)
        labels = labels if labels is not None else entry_labels(self.cache_dir, stems)
        self.labels = torch.tensor([labels[s][0] for s in stems], dtype=torch.long)
        self.actors = torch.tensor(speaker_numbers([labels[s][1] for s in stems]), dtype=torch.long)
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


def entry_labels(cache_dir: str | Path, stems: list[str]) -> dict[str, tuple[int, Speaker]]:
    """stem -> (label, speaker) from each entry's meta.json (``CacheError`` with the rebuild command when absent)."""
    return {s: meta_label_speaker(load_meta(cache_dir, s), str(entry_dir(cache_dir, s))) for s in stems}


def speaker_numbers(speakers: list[Speaker]) -> list[int]:
    """Speakers as the int tensor a batch carries (``"actor"``): int ids as they are; string ids (a user's own
    folder) by their position among the sorted distinct ids."""
    if all(isinstance(s, int) for s in speakers):
        return [int(s) for s in speakers]
    index = {s: i for i, s in enumerate(sorted({str(s) for s in speakers}))}
    return [index[str(s)] for s in speakers]


def expected_clips(corpus: Corpus | None, actors: list[Speaker] | tuple[Speaker, ...]) -> dict[Speaker, list[str]] | None:
    """The clip stems each speaker should have in the cache, as the corpus knows them (None: it does not)."""
    return None if corpus is None else corpus.expected_stems(actors)


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


class EmotionDataModule(pl.LightningDataModule):
    """Train/val/test loaders for one fold of a preprocessed cache of any corpus (``cfnsr.data.corpus``).

    Built from config (``conf/datamodule/default.yaml``, instantiated by ``cfnsr.builders.objects.build_datamodule``,
    which passes the objects: ``settings``, ``corpus``, ``split``, ``augment``). It only reads: making the corpus and
    the cache is a step the task runs before fit (``cfnsr.builders.corpus.prepare_data``, on global rank 0 only; who
    writes is defined in docs/trust.md), so Lightning's ``prepare_data`` hook is not used. The cache must be
    on a filesystem every rank sees; a rank that does not see it stops in ``setup`` naming the cache.
    ``setup`` serves only the clips the corpus discovers under ``root`` now whose cache entry was made from exactly
    those files (``cfnsr.data.source_identity``), and records the corpus fingerprint in ``corpus_identity``.
    The training order is a function of (seed, epoch) only (a seeded DistributedSampler, also on one device), so
    a run resumed from an epoch-end checkpoint sees the same batches as an uninterrupted one.

    Batches: ``"video"`` uint8 (B, T, S, S, 3) and ``"audio"`` float32 (B, n_mfcc, L) from the loaders, float
    (B, 3, T, S, S) and (B, n_mfcc, L) after ``on_after_batch_transfer``; ``"label"``, ``"actor"``, ``"index"``
    int64 (B,).
    """

    def __init__(
        self,
        *,
        root: str | Path,
        cache_dir: str | Path,
        settings: PreprocessSettings,
        corpus: Corpus | None,
        split: Split,
        augment: ClipAugment,
        batch_size: int,
        eval_batch_size: int | None,
        num_workers: int,
        pin_memory: bool,
        storage: str,
        seed: int,
        allow_missing_clips: bool,
    ) -> None:
        """Values from ``conf/datamodule/default.yaml`` (no defaults here: the YAML is their one place);
        ``eval_batch_size`` None: ``batch_size``."""
        super().__init__()
        self.root = Path(root)
        self.corpus = corpus
        self.allow_missing_clips = allow_missing_clips
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
        # {"corpus_fingerprint", "cache_dir", "cache_settings_hash", "clips"} once set up; into records/checkpoints
        self.corpus_identity: dict[str, Any] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        check_cache(self.cache_dir, self.settings)
        stems = self._served_stems()
        # Cheap facts of every entry (files, sizes, format); preprocess.verify=full also checks their checksums.
        # Label and speaker come from the same meta.json: the corpus wrote them, no file name is parsed here.
        broken, labels = [], {}
        for stem in stems:
            meta, why = check_entry(self.cache_dir, stem)
            if why is not None or meta is None:
                broken.append((stem, why))
                continue
            labels[stem] = meta_label_speaker(meta, str(entry_dir(self.cache_dir, stem)))
        by_actor: dict[Speaker, list[str]] = {}
        for stem, (_, speaker) in labels.items():
            by_actor.setdefault(speaker, []).append(stem)
        if broken:
            raise CacheError(f"{self.cache_dir}: {len(broken)} broken cache entr{'y' if len(broken) == 1 else 'ies'}: "
                             + "; ".join(f"{s}: {w}" for s, w in broken[:5])
                             + ("; ..." if len(broken) > 5 else "")
                             + " - re-run preprocessing to rebuild them (python preprocess.py ...)")
        problems = []
        for part, actors in (("train", self.split.train_actors), ("val", self.split.val_actors),
                             ("test", self.split.test_actors)):
            chosen = [s for a in actors for s in by_actor.get(a, [])]
            expected = expected_clips(self.corpus, actors) or {}
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
            self.datasets[part] = CachedClips(self.cache_dir, chosen, storage=self.storage, labels=labels)
        if problems and not self.allow_missing_clips:
            self.datasets = {}
            raise CacheError(
                f"{self.cache_dir}: the cache lacks clips the fold scheme needs:\n  " + "\n  ".join(problems)
                + f"\n(see {self.cache_dir / 'preprocess_report.json'} for why clips were skipped; re-run "
                  f"preprocessing to complete an interrupted corpus, or set data.allow_missing_clips=true to "
                  f"train on what there is)")
        for problem in problems:
            print(f"WARNING (data.allow_missing_clips=true): {problem}")
        try:
            self._refuse_leaks()
        except CacheError:
            self.datasets = {}
            raise

    def _served_stems(self) -> list[str]:
        """The cached clips to serve: those discovered under ``root`` now whose entry was made from those very files.

        An entry of a clip that left the corpus is not served; one whose sources differ (or were never recorded)
        stops the run (preprocessing, which runs first, rebuilds or re-identifies such entries). Also sets
        ``corpus_identity`` and keeps the sources for the duplicate check.
        """
        if self.corpus is None:
            raise CacheError(f"the data module needs a corpus (data.corpus) to check the cache at {self.cache_dir} "
                             f"against the clips under data.root={self.root}")
        try:
            candidates = self.corpus.discover(self.root)[0]
        except Exception as exc:  # noqa: BLE001 - the corpus's error, OSError: no corpus to check the cache against
            raise CacheError(f"data.root={self.root}: {exc}; the cache at {self.cache_dir} is served only for the "
                             f"corpus it was built from, which must be there") from exc
        sources = identity.corpus_sources(self.root, self.cache_dir, candidates)
        cached = set(cached_clips(self.cache_dir))
        served, wrong = [], []
        self._frames_sha: dict[str, str] = {}
        for clip in candidates:
            if clip.stem not in cached:
                continue
            try:
                meta = load_meta(self.cache_dir, clip.stem)
            except CacheError:
                served.append(clip.stem)  # unreadable meta.json: the broken-entry check below names it
                continue
            if not identity.sources_match(meta.get("sources"), sources[clip.stem]):
                wrong.append(clip.stem)
                continue
            served.append(clip.stem)
            digest = ((meta.get("files") or {}).get("frames.npy") or {}).get("sha256")
            if digest:
                self._frames_sha[clip.stem] = digest
        if wrong:
            raise CacheError(
                f"{self.cache_dir}: {len(wrong)} cache entr{'y was' if len(wrong) == 1 else 'ies were'} not made from "
                f"the files now under data.root={self.root} (or record no source identity): "
                + ", ".join(wrong[:6]) + (" ..." if len(wrong) > 6 else "")
                + f"; re-run preprocessing for this corpus (python preprocess.py data.root={self.root} "
                  f"data.cache_dir={self.cache_dir}), which rebuilds them or refuses a cache of another corpus")
        self._sources = sources
        self.corpus_identity = {"corpus_fingerprint": identity.fingerprint(sources),
                                "cache_dir": str(self.cache_dir.resolve()), "cache_settings_hash": self.settings.hash,
                                "clips": len(served)}
        return sorted(served)

    def _refuse_leaks(self) -> None:
        """Fail when one content (the same mp4, or identical cached frames) is both a training clip and a test or
        validation clip: the model would be tested on what it trained on, under another name."""
        train = set(self.datasets["train"].stems)
        groups = [("mp4", g) for g in identity.duplicate_groups(self._sources)]
        frames = {s: {"frames": {"sha256": d}} for s, d in self._frames_sha.items()}
        groups += [("frames", g) for g in identity.duplicate_groups(frames, key="frames")]
        leaks = []
        for kind, group in groups:
            trained = [s for s in group if s in train]
            for part in ("test", "val"):
                held_out = [s for s in group if s in set(self.datasets[part].stems)]
                if trained and held_out:
                    leaks.append(f"{trained[0]} (train) and {held_out[0]} ({part}) have the same {kind} content")
        if leaks:
            raise CacheError(f"{self.root}: duplicate clips across this run's splits ({self.cache_dir}):\n  "
                             + "\n  ".join(sorted(set(leaks))[:10])
                             + "\nremove the duplicate from the corpus (preprocess_report.json lists every "
                               "duplicate group)")

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


def __getattr__(name: str) -> Any:
    """``RavdessDataModule``: the old name of ``EmotionDataModule`` (it serves any corpus), kept importable."""
    if name == "RavdessDataModule":
        warnings.warn("cfnsr.data.datamodule.RavdessDataModule is deprecated: use EmotionDataModule",
                      DeprecationWarning, stacklevel=2)
        return EmotionDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
