"""Loader benchmark: clips per second delivered to the model by our data path vs the public code's JPEG loader.

"Delivered" means what the forward takes, on the target device: normalised float video ``(B, 3, T, S, S)`` and MFCC
``(B, 13, 212)``. Every path sees the same clips, batch size and worker count, in the same process.

* ``baseline (JPEG)``: what the public MSAF/CFN-SR loader does (docs/paper-facts.md#loader-and-augmentation), written here with cv2/numpy:
  per clip, 30 ``cv2.imread`` of the 224x224 face JPEGs; per frame, an independent RandomResizedCrop
  (scale (0.8, 1.4), ratio (3/4, 4/3), 10 tries then the whole image), horizontal flip (p 0.5), to float / 255,
  ImageNet normalisation; the frames stacked to ``(T, 3, S, S)``; the MFCC from its ``.npy``. The batch is moved to
  the device and permuted to ``(B, 3, T, S, S)`` as the public training loop does. cv2 crops and resizes faster
  than the original ToPILImage/PIL chain, so this baseline is, if anything, faster than the public code.
* ``ours <storage>``: ``EmotionDataModule.train_dataloader()`` over the preprocessed cache (uint8 clips) with
  ``storage`` mmap / memory (and device when CUDA is present), then the module's ``on_after_batch_transfer`` on the
  device: one crop/flip per clip (``ClipAugment`` as configured in ``conf/augment/default.yaml``), float,
  normalisation.
* ``ours mmap, no augment``: a diagnostic row, the uint8 batch as the loader hands it over, to show how much of our
  time goes to the augmentation rather than to loading.

Training mode: ``on_after_batch_transfer`` augments only when ``trainer.training`` is true and, without a trainer,
treats the batch as evaluation (no crop/flip). The bench therefore attaches a minimal stand-in trainer (training=True,
world size 1, rank 0) to the data module, so the exact training code path is what gets timed (``train_dataloader``
with its seeded shuffling sampler, the device gather for storage=device, the augmentation).

Timing: each path first runs one untimed epoch (worker start-up, first touch of every file); then ``--epochs`` timed
epochs go round-robin over the paths, so that a change in machine load hits every path alike. An epoch's time runs
from asking the loader for its first batch to the last batch being ready on the device (CUDA synchronised).

Setup (in a temporary directory, not timed): a synthetic corpus (640x360 mp4s) is generated and preprocessed with the
paper settings (30 frames, 224x224) into our cache; the baseline's folders (``frames/frame_{t:.2f}.jpg``, cv2.imwrite
default quality, BGR on disk as the public code wrote them; ``audios/featuresMFCC.npy``) are written from the same
cached frames and MFCCs. All files are in the page cache when timing starts, for every path alike.

Usage: ``python bench/loader.py [--clips 48] [--batch 4] [--workers 2] [--epochs 3] [--device cpu|cuda]``
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from cfnsr.data.cache import cached_clips, load_clip
from cfnsr.data.datamodule import CachedClips, EmotionDataModule
from cfnsr.data.folds import Split
from cfnsr.data.preprocess import preprocess_corpus
from cfnsr.data.ravdess import parse_name
from cfnsr.data.settings import PreprocessSettings, check_cache
from cfnsr.data.synthetic import generate_corpus

AUGMENT_CONF = Path(__file__).resolve().parents[1] / "conf" / "augment" / "default.yaml"

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
Batch = dict[str, torch.Tensor]


# ---------------------------------------------------------------------------------------------------- setup
def make_data(root: Path, clips: int, frames: int, size: int, width: int, height: int,
              workers: int) -> tuple[Path, Path, PreprocessSettings, list[str]]:
    """Synthetic corpus -> our cache -> the baseline's JPEG/npy folders. Returns (cache, jpeg root, settings, stems)."""
    actors = math.ceil(clips / 60)
    per_actor = math.ceil(clips / actors)
    corpus, cache, jpegs = root / "corpus", root / "cache", root / "jpeg"
    generate_corpus(corpus, workers=workers, progress=False, actors=actors, clips_per_actor=per_actor,
                    width=width, height=height)
    settings = PreprocessSettings(frames=frames, size=size)
    preprocess_corpus(corpus, cache, settings, workers=workers, progress=False)
    stems = cached_clips(cache)
    for extra in stems[clips:]:  # actors x per_actor may exceed clips by a few
        shutil.rmtree(cache / "clips" / extra)
    stems = stems[:clips]
    for stem in stems:
        video, mfcc = load_clip(cache, stem, mmap=False)
        clip_dir = jpegs / stem
        (clip_dir / "frames").mkdir(parents=True, exist_ok=True)
        (clip_dir / "audios").mkdir(parents=True, exist_ok=True)
        for t, frame in enumerate(video):
            # The public code named frames by their time in seconds (3.3 s: the synthetic clips' duration);
            # cv2.imwrite takes BGR, so our RGB crops are flipped.
            cv2.imwrite(str(clip_dir / "frames" / f"frame_{t / frames * 3.3:.2f}.jpg"), frame[..., ::-1])
        np.save(clip_dir / "audios" / "featuresMFCC.npy", mfcc)
    return cache, jpegs, settings, stems


# ---------------------------------------------------------------------------------------------------- baseline
def random_resized_crop_box(h: int, w: int, rng: np.random.Generator, scale: tuple[float, float] = (0.8, 1.4),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop.get_params: (top, left, height, width); 10 tries, then a centre fallback."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target * aspect)))
        ch = int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return top, left, ch, cw
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


class JpegClips(Dataset):
    """The public loader: 30 JPEGs per clip, each frame cropped/flipped/normalised on its own; MFCC from .npy."""

    def __init__(self, root: Path, stems: list[str], size: int) -> None:
        self.root = root
        self.stems = stems
        self.size = size
        self.mean = np.array(MEAN, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.array(STD, dtype=np.float32).reshape(3, 1, 1)
        self.labels = [parse_name(s).label for s in stems]

    def __len__(self) -> int:
        return len(self.stems)

    def _frame(self, path: str, rng: np.random.Generator) -> np.ndarray:
        img = cv2.imread(path)  # BGR, fed as is (the public code's quirk)
        top, left, ch, cw = random_resized_crop_box(img.shape[0], img.shape[1], rng)
        img = cv2.resize(img[top:top + ch, left:left + cw], (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        # ToTensor then Normalize, in place as torchvision does
        x = img.transpose(2, 0, 1).astype(np.float32)
        x /= 255.0
        x -= self.mean
        x /= self.std
        return x

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        clip = self.root / self.stems[i]
        rng = np.random.default_rng()
        names = sorted(os.listdir(clip / "frames"))
        frames = np.stack([self._frame(str(clip / "frames" / n), rng) for n in names])
        mfcc = np.load(clip / "audios" / "featuresMFCC.npy")
        return {"video": torch.from_numpy(frames), "audio": torch.from_numpy(mfcc),
                "label": torch.tensor(self.labels[i])}


def baseline_deliver(batch: Batch, device: torch.device) -> Batch:
    """Move to the device and permute (B, T, 3, S, S) -> (B, 3, T, S, S), as the public training loop does."""
    batch = to_device(batch, device)
    return {**batch, "video": batch["video"].permute(0, 2, 1, 3, 4)}


# ---------------------------------------------------------------------------------------------------- ours
def training_stand_in() -> SimpleNamespace:
    """Just enough of a Trainer for the data module to take the training path (augmentation on, train split)."""
    return SimpleNamespace(training=True, sanity_checking=False, validating=False, world_size=1, global_rank=0)


def our_datamodule(cache: Path, settings: PreprocessSettings, stems: list[str], batch: int, workers: int,
                   storage: str, pin_memory: bool) -> EmotionDataModule:
    """The data module with every benchmark clip in its training set.

    ``setup()`` would split the clips by actor and also load val/test sets (into memory for storage=memory); the
    bench checks the cache as ``setup()`` does and then gives the module its one training set directly.
    """
    actors = tuple(sorted({parse_name(s).actor for s in stems}))
    dm = EmotionDataModule(root=cache.parent / "corpus", cache_dir=cache, settings=settings, corpus=None,
                           split=Split(train_actors=actors, val_actors=(), test_actors=()),
                           batch_size=batch, eval_batch_size=None, augment=instantiate(OmegaConf.load(AUGMENT_CONF)),
                           num_workers=workers, pin_memory=pin_memory, storage=storage, seed=0,
                           allow_missing_clips=False)
    dm.trainer = training_stand_in()
    check_cache(cache, settings)
    dm.datasets = {"train": CachedClips(cache, stems, storage=storage)}
    return dm


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------------- timing
def run_epoch(loader: DataLoader, deliver: Callable[[Batch], Batch], device: torch.device) -> tuple[int, float]:
    """One whole epoch through ``deliver``: (clips delivered, seconds until the last batch is ready on the device).

    Always whole epochs: breaking out early would leave workers computing prefetched batches in the background,
    which would slow down whichever path is timed next.
    """
    clips = 0
    start = time.perf_counter()
    for b in loader:
        clips += deliver(b)["video"].shape[0]
    sync(device)
    return clips, time.perf_counter() - start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_delivered(out: Batch, frames: int, size: int, device: torch.device) -> None:
    """Both paths must hand the model the same thing: float (B, 3, T, S, S) and (B, 13, L) on the device."""
    v, a = out["video"], out["audio"]
    assert v.dtype == torch.float32 and v.shape[1:] == (3, frames, size, size), (v.dtype, v.shape)
    assert a.dtype == torch.float32 and a.shape[1] == 13, (a.dtype, a.shape)
    assert v.device.type == device.type and a.device.type == device.type


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Build the data in a temporary directory, time every path; one row per path (see module docstring)."""
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    pin = device.type == "cuda"
    # CachedClips wraps read-only memory maps without copying (collate copies them); inherited by forked workers.
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        t0 = time.perf_counter()
        clips = args.clips if args.batches is None else min(args.clips, args.batches * args.batch)
        cache, jpegs, settings, stems = make_data(Path(tmp), clips, args.frames, args.size, args.width,
                                                  args.height, max(args.workers, 1))
        setup_s = time.perf_counter() - t0
        if args.verbose:
            print(f"setup: {len(stems)} clips generated, cached and written as JPEGs in {setup_s:.1f} s",
                  file=sys.stderr)

        # Loaders keep persistent workers; between two of its epochs a loader's workers sit idle.
        def baseline() -> tuple[DataLoader, Callable[[Batch], Batch]]:
            loader = DataLoader(JpegClips(jpegs, stems, args.size), batch_size=args.batch, shuffle=True,
                                num_workers=args.workers, pin_memory=pin, persistent_workers=args.workers > 0)
            return loader, lambda b: baseline_deliver(b, device)

        def ours(storage: str, augment: bool = True) -> Callable[[], tuple[DataLoader, Callable[[Batch], Batch]]]:
            def build() -> tuple[DataLoader, Callable[[Batch], Batch]]:
                dm = our_datamodule(cache, settings, stems, args.batch, args.workers, storage, pin)
                if augment:
                    return dm.train_dataloader(), lambda b: dm.on_after_batch_transfer(to_device(b, device), 0)
                return dm.train_dataloader(), lambda b: to_device(b, device)
            return build

        paths = [("baseline (JPEG, per-frame aug)", baseline, True), ("ours mmap", ours("mmap"), True)]
        if args.diagnostics:
            paths.append(("ours mmap, no augment (uint8)", ours("mmap", augment=False), False))
        paths.append(("ours memory", ours("memory"), True))
        if device.type == "cuda":
            paths.append(("ours device", ours("device"), True))

        built = []
        for name, build, full in paths:
            loader, deliver = build()
            if full:
                check_delivered(deliver(next(iter(loader))), args.frames, args.size, device)
            run_epoch(loader, deliver, device)  # warm-up: worker start, first touches of every file
            built.append((name, loader, deliver, full))
        # Timed epochs go round-robin over the paths, so a change in machine load hits them all alike.
        totals = {name: [0, 0.0] for name, *_ in built}
        for _ in range(args.epochs):
            for name, loader, deliver, _full in built:
                n, seconds = run_epoch(loader, deliver, device)
                totals[name][0] += n
                totals[name][1] += seconds
        rows = []
        for name, _loader, _deliver, full in built:
            n, seconds = totals[name]
            rows.append({"path": name, "clips": n, "seconds": seconds, "clips_per_s": n / seconds,
                         "ms_per_clip": 1000 * seconds / n, "delivers_model_input": full})
        del built, paths  # ends the persistent loader workers
    base_rate = rows[0]["clips_per_s"]
    for r in rows:
        r["ratio"] = r["clips_per_s"] / base_rate
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'path':34s} {'clips/s':>9s} {'ms/clip':>9s} {'vs baseline':>12s}"]
    for r in rows:
        lines.append(f"{r['path']:34s} {r['clips_per_s']:9.1f} {r['ms_per_clip']:9.2f} {r['ratio']:11.2f}x")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=48, help="synthetic clips to generate and load")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers, the same for every path")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per path (after one warm-up epoch)")
    p.add_argument("--batches", type=int, default=None,
                   help="batches per epoch: only the first batches x batch clips are used (default: all --clips)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    p.add_argument("--frames", type=int, default=30, help="frames per clip (paper: 30)")
    p.add_argument("--size", type=int, default=224, help="face crop size (paper: 224)")
    p.add_argument("--width", type=int, default=640, help="synthetic video width")
    p.add_argument("--height", type=int, default=360, help="synthetic video height")
    p.add_argument("--no-diagnostics", dest="diagnostics", action="store_false",
                   help="skip the 'no augment' diagnostic row")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads of the main process (default: torch's choice, one per core)")
    p.add_argument("--quiet", dest="verbose", action="store_false")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args)
    dev = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({os.cpu_count()} cores)"
    print(f"loader bench on {dev}: batch {args.batch}, workers {args.workers}, {args.frames}x{args.size}x{args.size}"
          f" clips, {rows[0]['clips']} timed clips per path, torch threads {torch.get_num_threads()}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
