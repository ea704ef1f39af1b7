"""Runs a robustness suite: the checkpoint's test fold under each (corruption, level), through the same Lightning
test loop and metrics as the clean evaluation; writes ``robustness.{json,csv,png}`` (schema in docs/robustness.md).

Per clip, in the loader (CPU): the cached uint8 frames and MFCC are read; an audio corruption rewrites the cached
waveform (``audio.npy``) and recomputes the MFCC with the checkpoint's preprocessing settings; a uint8 video
corruption rewrites the frames. After the batch is on the device it is normalised exactly as in the clean evaluation
(the run's ``ClipAugment`` in eval mode), then occlusions and removals (``cfnsr.data.missing``) are applied to the
normalised tensors. Every random draw comes from ``corruptions.clip_rng(seed, corruption, level, stem)``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from cfnsr.builders.config_checks import ConfigError
from cfnsr.data import cache
from cfnsr.data.cache import CacheError, load_audio, load_clip
from cfnsr.data.datamodule import UnpaddedDistributedSampler, entry_labels, speaker_numbers
from cfnsr.data.features import compute_mfcc
from cfnsr.data.missing import remove_modality, remove_per_clip
from cfnsr.data.settings import PreprocessSettings
from cfnsr.files import atomic_write, write_text_atomic
from cfnsr.robustness import corruptions as C
from cfnsr.runs.diagnostics import by_interaction
from cfnsr.runs.ranks import global_rank_from_env
from cfnsr.runs.recipe import recipe_hash, row_recipe, table_recipe, training_recipe
from cfnsr.tester import TrainerFactory, run_test

SCHEMA = 1
RESULTS_SUBDIR = "robustness"  # per-condition test results (metrics + confusion), one JSON each
ROW_FIELDS = ("corruption", "level", "war", "uar", "f1", "n", "relative")
META_FIELDS = ("run_id", "fusion", "fold", "seed", "protocol", "backbone", "dataset", "recipe_hash")
_SUITE_KEYS = {"seed", "corruptions"}


# ---------------------------------------------------------------------------------------------------- the suite

@dataclass(frozen=True)
class Condition:
    """One corruption at one level (``level`` None for corruptions without levels)."""

    corruption: str
    level: float | None

    @property
    def spec(self) -> C.Corruption:
        return C.CORRUPTIONS[self.corruption]

    @property
    def tag(self) -> str:
        """A file-name-safe name: ``audio_noise_10``, ``video_drop_frames_0.25``, ``video_removed``."""
        return self.corruption if self.level is None else f"{self.corruption}_{self.level:g}"


@dataclass(frozen=True)
class Suite:
    seed: int
    conditions: tuple[Condition, ...]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_suite(robustness: Mapping[str, Any] | DictConfig | None) -> Suite | None:
    """The ``robustness`` config -> ``Suite``, or None when it lists no corruption (``robustness=none``).

    Raises ``ConfigError`` naming the key for an unknown corruption, a missing or invalid level, or another key.
    """
    if robustness is None:
        return None
    if isinstance(robustness, DictConfig):
        robustness = OmegaConf.to_container(robustness, resolve=True)
    if not isinstance(robustness, Mapping):
        raise ConfigError(f"robustness={robustness!r}: expected a suite (robustness=default) or none")
    extra = sorted(set(robustness) - _SUITE_KEYS)
    if extra:
        raise ConfigError(f"robustness does not take {', '.join(extra)} (keys: seed, corruptions)")
    listed = robustness.get("corruptions") or {}
    if not listed:
        return None
    seed = robustness.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"robustness.seed={seed!r}: expected a non-negative integer")
    if not isinstance(listed, Mapping):
        raise ConfigError("robustness.corruptions: expected a mapping {corruption: [levels] or null}")
    conditions = []
    for name, levels in listed.items():
        key = f"robustness.corruptions.{name}"
        spec = C.CORRUPTIONS.get(name)
        if spec is None:
            raise ConfigError(f"{key}: unknown corruption; known: {', '.join(C.CORRUPTIONS)}")
        if not spec.has_levels:
            if levels is not None:
                raise ConfigError(f"{key}={levels!r}: this corruption has no levels, write `{name}: null`")
            conditions.append(Condition(name, None))
            continue
        if not isinstance(levels, (list, tuple)) or not levels:
            raise ConfigError(f"{key}={levels!r}: expected a non-empty list of levels ({spec.unit})")
        seen = set()
        for level in levels:
            if not _number(level):
                raise ConfigError(f"{key}: level {level!r} is not a number ({spec.unit})")
            problem = spec.check_level(float(level)) if spec.check_level else None
            if problem:
                raise ConfigError(f"{key}: level {level!r} {problem} ({spec.unit})")
            if C.level_key(level) in seen:
                raise ConfigError(f"{key}: level {level!r} is listed twice")
            seen.add(C.level_key(level))
            conditions.append(Condition(name, float(level)))
    return Suite(seed, tuple(conditions))


def require_audio_window(cache_dir: str | Path) -> None:
    """Refuse a cache written before format 3 (no audio.npy) with a message that says how to rebuild it."""
    recorded = cache.read_settings(cache_dir)
    found = recorded.get("format") if recorded is not None else None
    if isinstance(found, int) and found < 3:
        raise CacheError(
            f"the cache at {cache_dir} has cache format {found}: its entries have no audio.npy (the raw audio window, "
            f"kept since cache format 3), which the robustness suite needs to corrupt the waveform before the MFCC; "
            f"{cache.AUDIO_REBUILD_HINT}")


# ---------------------------------------------------------------------------------------------------- one clip

def corrupt_clip(condition: Condition, seed: int, stem: str, frames: np.ndarray, mfcc: np.ndarray,
                 load_window: Callable[[], np.ndarray], settings: PreprocessSettings
                 ) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """One clip under ``condition`` -> (frames uint8 (T, H, W, 3), mfcc float32, drop_video, drop_audio).

    ``frames``/``mfcc`` are the cached arrays (returned unchanged when the condition does not touch them);
    ``load_window()`` gives the cached waveform (only called for waveform corruptions). The drop flags mark
    removals, applied after normalisation (``apply_after_normalisation``).
    """
    name, level = condition.corruption, condition.level
    s = settings
    if name in ("audio_noise", "audio_shift"):
        window = load_window()
        if name == "audio_noise":
            window = C.add_white_noise(window, level, C.clip_rng(seed, name, level, stem))
        else:
            window = C.shift_audio(window, level, s.sample_rate)
        mfcc = compute_mfcc(window, s.sample_rate, s.n_mfcc, s.n_fft, s.hop_length)
    elif name == "video_noise":
        frames = C.pixel_noise(np.asarray(frames), level, C.clip_rng(seed, name, level, stem))
    elif name == "video_blur":
        frames = C.gaussian_blur(np.asarray(frames), level)
    elif name == "video_drop_frames":
        frames = C.drop_frames(np.asarray(frames), level, C.clip_rng(seed, name, level, stem))
    drop_video = name == "video_removed"
    drop_audio = name == "audio_removed"
    if name == "one_removed":
        drop_video = bool(C.clip_rng(seed, name, level, stem).random() < 0.5)
        drop_audio = not drop_video
    return frames, mfcc, drop_video, drop_audio


def apply_after_normalisation(condition: Condition, video: torch.Tensor, audio: torch.Tensor,
                              drop_video: torch.Tensor, drop_audio: torch.Tensor
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Occlusion and removal on the normalised batch: video (B, 3, T, H, W), audio (B, n_mfcc, L)."""
    name = condition.corruption
    if name in ("video_occlude_lower", "video_occlude_upper"):
        return C.occlude(video, name.rsplit("_", 1)[1]), audio
    if name == "video_removed":
        return remove_modality(video, audio, "video")
    if name == "audio_removed":
        return remove_modality(video, audio, "audio")
    if name == "one_removed":
        return remove_per_clip(video, audio, drop_video.bool(), drop_audio.bool())
    return video, audio


class CorruptedClips(Dataset):
    """The test clips under one condition; items as ``CachedClips`` (+ ``drop_video``/``drop_audio`` bool)."""

    def __init__(self, cache_dir: str | Path, stems: list[str], condition: Condition, seed: int,
                 settings: PreprocessSettings) -> None:
        self.cache_dir = Path(cache_dir)
        self.stems = list(stems)
        self.condition = condition
        self.seed = seed
        self.settings = settings
        labels = entry_labels(self.cache_dir, self.stems)  # from meta.json, as the data module reads them
        self.labels = torch.tensor([labels[s][0] for s in self.stems], dtype=torch.long)
        self.actors = torch.tensor(speaker_numbers([labels[s][1] for s in self.stems]), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        stem = self.stems[i]
        frames, mfcc = load_clip(self.cache_dir, stem, mmap=True)
        frames, mfcc, drop_video, drop_audio = corrupt_clip(
            self.condition, self.seed, stem, frames, mfcc, lambda: load_audio(self.cache_dir, stem), self.settings)
        return {"label": self.labels[i], "actor": self.actors[i], "index": torch.tensor(i),
                "video": torch.from_numpy(np.array(frames, dtype=np.uint8)),
                "audio": torch.from_numpy(np.array(mfcc, dtype=np.float32)),
                "drop_video": torch.tensor(drop_video), "drop_audio": torch.tensor(drop_audio)}


class CorruptedTestData(pl.LightningDataModule):
    """The test split of an already set-up ``EmotionDataModule`` (``base``) under one condition.

    Normalisation is the base's own ``ClipAugment`` in eval mode, as in the clean test.
    """

    def __init__(self, base: Any, condition: Condition, seed: int) -> None:
        super().__init__()
        self.base = base
        self.condition = condition
        self.seed = seed
        self.datasets: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            stems = self.base.datasets["test"].stems
            self.datasets["test"] = CorruptedClips(self.base.cache_dir, stems, self.condition, self.seed,
                                                   self.base.settings)

    def test_dataloader(self) -> DataLoader:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
        ds = self.datasets["test"]
        return DataLoader(ds, batch_size=self.base.eval_batch_size, sampler=UnpaddedDistributedSampler(ds, world, rank),
                          num_workers=self.base.num_workers, pin_memory=self.base.pin_memory)

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        augment = self.base.augment
        augment.train(False)
        video, audio = augment(batch["video"]), batch["audio"].float()
        video, audio = apply_after_normalisation(self.condition, video, audio, batch["drop_video"],
                                                 batch["drop_audio"])
        return {**batch, "video": video, "audio": audio}


# ---------------------------------------------------------------------------------------------------- running it

def run_suite(suite: Suite, make_trainer: TrainerFactory, module: Any, datamodule: Any, out_dir: str | Path,
              manifest: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Test ``module`` on the test split of ``datamodule`` (already set up by the clean test) under every condition,
    each on a trainer from ``make_trainer`` (``cfnsr.tester.run_test``).

    Returns one row per condition on global rank 0 (none on other ranks): {corruption, level, war, uar, f1, n}
    (``relative`` is added by ``robustness_document``), plus ``by_interaction`` (accuracy per interaction type,
    ``cfnsr.runs.diagnostics``) when the corpus's interactions ``manifest`` is given. Per-condition results with the
    confusion matrix stay in ``<out_dir>/robustness/``.
    """
    results = Path(out_dir) / RESULTS_SUBDIR
    rows = []
    for cond in suite.conditions:
        result = run_test(make_trainer, module, CorruptedTestData(datamodule, cond, suite.seed),
                          results / f"{cond.tag}.json")
        if global_rank_from_env() != 0:
            continue
        row = {"corruption": cond.corruption, "level": cond.level,
               **{k: result[k] for k in ("war", "uar", "f1", "n")}}
        if manifest is not None:
            row["by_interaction"] = by_interaction(result["confusion"], manifest)
        rows.append(row)
        level = "" if cond.level is None else f" {cond.level:g}"
        print(f"robustness: {cond.corruption}{level}: WAR {100 * result['war']:.2f}  UAR {100 * result['uar']:.2f}"
              f"  (n={result['n']})", flush=True)
    return rows


def protocol_note(protocol: str | None, checkpoint: str | Path) -> str:
    name = Path(checkpoint).name
    if protocol == "paper":
        if name.startswith("best-"):
            return ("paper protocol: this checkpoint is the run's best TEST epoch (the epoch was selected on the test "
                    "fold), so its clean accuracy is optimistic; the corrupted accuracies are of the same weights. "
                    "Compare relative drops, or evaluate a protocol=clean checkpoint.")
        return ("paper protocol run (its reported best epoch was selected on the test fold); this checkpoint "
                f"({name}) was not selected by test accuracy")
    if protocol == "clean":
        return ("clean protocol: the checkpoint was selected on an actor-disjoint validation block; the test fold "
                "was not used to select it")
    return f"protocol {protocol!r}: unknown selection rule"


def checkpoint_meta(ckpt: Mapping[str, Any], ckpt_path: str | Path, suite: Suite) -> dict[str, Any]:
    """The ``meta`` block: copied from the checkpoint (run id and its saved, resolved run config)."""
    cfg = ckpt["cfnsr_config"]
    protocol = cfg.get("protocol", {}).get("name")
    recipe = training_recipe(cfg)
    return {
        "run_id": ckpt.get("cfnsr_run_id"),
        "fusion": cfg.get("fusion", {}).get("name"),
        "fold": cfg.get("fold"),
        "seed": cfg.get("seed"),
        "protocol": protocol,
        "backbone": cfg.get("backbone", {}).get("name"),
        "dataset": cfg.get("data", {}).get("name"),
        "recipe_hash": recipe_hash(recipe),
        # The report's blocks: runs whose recipes differ only in the fusion (and its initialisation) share a block,
        # so robustness is compared across fusions; rows are told apart by the row recipe.
        "table_recipe_hash": recipe_hash(table_recipe(recipe)),
        "row_recipe_hash": recipe_hash(row_recipe(recipe)),
        "protocol_note": protocol_note(protocol, ckpt_path),
        "checkpoint": str(ckpt_path),
        "robustness_seed": suite.seed,
        "units": {c.corruption: c.spec.unit for c in suite.conditions},
    }


def _relative(war: float, clean_war: float) -> float | None:
    return war / clean_war if clean_war > 0 else None


def robustness_document(meta: dict[str, Any], clean: Mapping[str, Any], rows: list[dict[str, Any]]
                        ) -> dict[str, Any]:
    """``{"schema": 1, "meta", "clean": {war, uar, f1, n, split_clips}, "rows": [{corruption, level, war, uar, f1, n, relative}]}``
    (relative = war / clean war, null when the clean WAR is 0). ``by_interaction`` is copied into ``clean`` and each
    row where present (a corpus with an interactions manifest)."""
    # split_clips: the test split's size, so a reader can check every condition's clip count against it
    extra = ("by_interaction",)
    clean_out = {k: clean[k] for k in ("war", "uar", "f1", "n", "split_clips", *extra) if k in clean}
    return {"schema": SCHEMA, "meta": meta, "clean": clean_out,
            "rows": [{**{k: r[k] for k in ROW_FIELDS[:-1]}, "relative": _relative(r["war"], clean_out["war"]),
                      **{k: r[k] for k in extra if k in r}}
                     for r in rows]}


def write_outputs(out_dir: str | Path, doc: dict[str, Any]) -> dict[str, Path]:
    """robustness.json, robustness.csv (a ``clean`` row first, then one per condition, with the meta's id columns and,
    for a corpus with an interactions manifest, ``acc_<type>`` columns) and robustness.png, each written under a temporary name then renamed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "robustness.json", "csv": out / "robustness.csv", "png": out / "robustness.png"}
    write_text_atomic(paths["json"], json.dumps(doc, indent=2) + "\n")

    with atomic_write(paths["csv"]) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        # With an interactions manifest: one accuracy column per interaction type (acc_<type>), after the ids.
        types = list(doc["clean"].get("by_interaction") or {})
        writer.writerow([*ROW_FIELDS, *META_FIELDS, *(f"acc_{t}" for t in types)])
        ids = [doc["meta"].get(k) for k in META_FIELDS]

        def per_type(row: Mapping[str, Any]) -> list[Any]:
            found = row.get("by_interaction") or {}
            return [(found.get(t) or {}).get("acc", "") for t in types]

        clean = doc["clean"]
        writer.writerow(["clean", "", clean["war"], clean["uar"], clean["f1"], clean["n"], 1.0, *ids,
                         *per_type(clean)])
        for r in doc["rows"]:
            writer.writerow([r["corruption"], "" if r["level"] is None else r["level"], r["war"], r["uar"], r["f1"],
                             r["n"], "" if r["relative"] is None else r["relative"], *ids, *per_type(r)])
    with atomic_write(paths["png"]) as tmp:
        plot_robustness(doc, tmp)
    return paths


def plot_robustness(doc: dict[str, Any], path: str | Path) -> None:
    """WAR against level, one panel and line per corruption with levels (its unit on the x axis, the clean WAR
    dashed), and one panel of bars for the corruptions without levels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    units = doc["meta"].get("units", {})
    clean = doc["clean"]["war"]
    leveled: dict[str, list[tuple[float, float]]] = {}
    single: list[tuple[str, float]] = []
    for r in doc["rows"]:
        if r["level"] is None:
            single.append((r["corruption"], r["war"]))
        else:
            leveled.setdefault(r["corruption"], []).append((r["level"], r["war"]))
    n = len(leveled) + (1 if single else 0)
    cols = min(3, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, points) in zip(axes, leveled.items(), strict=False):
        points = sorted(points)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.axhline(clean, linestyle="--", color="grey", label="clean")
        ax.set_title(name)
        ax.set_xlabel(units.get(name) or "level")
        ax.set_ylabel("WAR")
        ax.set_ylim(0, 1)
        if name == "audio_noise":
            ax.invert_xaxis()  # lower SNR = stronger corruption, to the right as in the other panels
        ax.legend(fontsize=8)
    if single:
        ax = axes[len(leveled)]
        ax.bar(range(len(single)), [w for _, w in single], color="#9ecae1", edgecolor="#3182bd")
        ax.set_xticks(range(len(single)), [s for s, _ in single], rotation=30, ha="right", fontsize=8)
        ax.axhline(clean, linestyle="--", color="grey", label="clean")
        ax.set_ylabel("WAR")
        ax.set_ylim(0, 1)
        ax.set_title("without levels")
        ax.legend(fontsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    meta = doc["meta"]
    fig.suptitle(f"{meta.get('fusion')} fold {meta.get('fold')} seed {meta.get('seed')} ({meta.get('protocol')} "
                 f"protocol): test WAR under corruption")
    fig.tight_layout()
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=110, format="png")
