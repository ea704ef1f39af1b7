"""cfnsr.robustness.suite: where each corruption enters the pipeline, determinism, the missing-modality policy,
the output files, training-time modality dropout, and (slow) exact invariants on a real evaluation."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tests_helpers import compose_eval, compose_train, make
from torch.utils.data import default_collate

from cfnsr.builders.config_checks import ConfigError
from cfnsr.data import cache as cache_mod
from cfnsr.data.cache import CacheError, load_audio, load_clip
from cfnsr.data.features import compute_mfcc, quantize_audio
from cfnsr.data.missing import remove_modality
from cfnsr.data.ravdess import parse_name
from cfnsr.data.settings import PreprocessSettings
from cfnsr.robustness import corruptions as C
from cfnsr.robustness.suite import (
    ROW_FIELDS,
    Condition,
    CorruptedClips,
    CorruptedTestData,
    parse_suite,
    protocol_note,
    require_audio_window,
    robustness_document,
    write_outputs,
)

SETTINGS = PreprocessSettings(frames=8, size=32)
STEMS = [f"01-01-0{e}-0{i}-01-01-0{a}" for a in (1, 2) for e in range(2, 9) for i in (1, 2)][:24]


def _window(seed: int) -> np.ndarray:
    n = int(SETTINGS.audio_duration * SETTINGS.sample_rate)
    t = np.arange(n) / SETTINGS.sample_rate
    rng = np.random.default_rng(seed)
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in rng.uniform(100, 2000, size=4))
    return (0.1 * np.clip(np.sin(2 * np.pi * 2 * t), 0, None) * x).astype(np.float32)


@pytest.fixture(scope="module")
def fake_cache(tmp_path_factory) -> Path:
    """A cache in the real format (cfnsr.data.cache.write_entry), with random frames and tone-burst audio."""
    cache = tmp_path_factory.mktemp("cache")
    cache_mod.write_settings(cache, SETTINGS.to_dict())
    rng = np.random.default_rng(0)
    for k, stem in enumerate(STEMS):
        window = _window(k)
        mfcc = compute_mfcc(window, SETTINGS.sample_rate, SETTINGS.n_mfcc, SETTINGS.n_fft, SETTINGS.hop_length)
        audio, _ = quantize_audio(window)
        frames = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
        name = parse_name(stem)  # as preprocessing writes them: label and speaker in meta.json
        meta = {"stem": stem, "audio_scale": 32767, "label": name.label, "actor": name.actor, "speaker": name.actor}
        cache_mod.write_entry(cache, stem, frames, mfcc, meta, audio=audio)
    return cache


def _item(cache: Path, name: str, level: float | None, seed: int = 0, i: int = 0) -> dict:
    return CorruptedClips(cache, STEMS, Condition(name, level), seed, SETTINGS)[i]


# ---------------------------------------------------------------------------------------------------- where it enters

def test_audio_noise_enters_the_waveform_before_the_mfcc(fake_cache):
    stem = STEMS[3]
    window = load_audio(fake_cache, stem)
    noisy = C.add_white_noise(window, 10, C.clip_rng(0, "audio_noise", 10, stem))
    noise = noisy.astype(np.float64) - window
    assert 10 * np.log10(np.mean(window.astype(np.float64) ** 2) / np.mean(noise ** 2)) == pytest.approx(10, abs=0.1)
    expected = compute_mfcc((window + noise).astype(np.float32), SETTINGS.sample_rate, SETTINGS.n_mfcc,
                            SETTINGS.n_fft, SETTINGS.hop_length)
    item = _item(fake_cache, "audio_noise", 10.0, i=3)
    np.testing.assert_allclose(item["audio"].numpy(), expected, rtol=0, atol=1e-4 * np.abs(expected).max())
    cached = load_clip(fake_cache, stem)[1]
    assert np.abs(item["audio"].numpy() - cached).max() > 0.05 * np.abs(cached).max()  # it did change
    np.testing.assert_array_equal(item["video"].numpy(), load_clip(fake_cache, stem)[0])  # video untouched


def test_audio_shift_recomputes_the_mfcc_of_the_delayed_waveform(fake_cache):
    window = load_audio(fake_cache, STEMS[0])
    expected = compute_mfcc(C.shift_audio(window, 0.25, SETTINGS.sample_rate), SETTINGS.sample_rate,
                            SETTINGS.n_mfcc, SETTINGS.n_fft, SETTINGS.hop_length)
    np.testing.assert_array_equal(_item(fake_cache, "audio_shift", 0.25)["audio"].numpy(), expected)


@pytest.mark.parametrize(("name", "level"), [("video_noise", 20.0), ("video_blur", 2.0), ("video_drop_frames", 0.5)])
def test_video_corruptions_act_on_the_uint8_frames_only(fake_cache, name, level):
    stem = STEMS[5]
    frames, mfcc = load_clip(fake_cache, stem)
    rng = C.clip_rng(0, name, level, stem)
    expected = {"video_noise": lambda: C.pixel_noise(np.asarray(frames), level, rng),
                "video_blur": lambda: C.gaussian_blur(np.asarray(frames), level),
                "video_drop_frames": lambda: C.drop_frames(np.asarray(frames), level, rng)}[name]()
    item = _item(fake_cache, name, level, i=5)
    assert item["video"].dtype == torch.uint8
    np.testing.assert_array_equal(item["video"].numpy(), expected)
    assert not np.array_equal(expected, frames)
    np.testing.assert_array_equal(item["audio"].numpy(), mfcc)  # the cached MFCC, bit for bit


# ---------------------------------------------------------------------------------------------------- determinism

def test_two_calls_see_the_same_corrupted_clips_and_the_seed_changes_them(fake_cache):
    suite = parse_suite(compose_eval(["ckpt_path=x", "robustness=default"], Path("unused")).robustness)
    for cond in suite.conditions:
        a, b = (CorruptedClips(fake_cache, STEMS, cond, 7, SETTINGS) for _ in range(2))
        for i in (0, 9):
            x, y = a[i], b[i]
            for key in x:
                assert torch.equal(x[key], y[key]), (cond, key)
    for name, level in (("audio_noise", 5.0), ("video_noise", 10.0), ("video_drop_frames", 0.5)):
        x, y = _item(fake_cache, name, level, seed=7), _item(fake_cache, name, level, seed=8)
        assert not (torch.equal(x["audio"], y["audio"]) and torch.equal(x["video"], y["video"])), name
    flags = [[bool(CorruptedClips(fake_cache, STEMS, Condition("one_removed", None), s, SETTINGS)[i]["drop_video"])
              for i in range(len(STEMS))] for s in (7, 8)]
    assert flags[0] != flags[1]


# ---------------------------------------------------------------------------------------------------- after normalisation

def _batch(cache: Path, cond: Condition, seed: int = 0) -> tuple[dict, dict]:
    """(the batch as the device sees it after the suite's transfer hook, the clean normalised batch)."""
    ds = CorruptedClips(cache, STEMS, cond, seed, SETTINGS)
    raw = default_collate([ds[i] for i in range(len(ds))])
    dm = CorruptedTestData(SimpleNamespace(augment=make("augment", "default")), cond, seed)
    out = dm.on_after_batch_transfer(raw, 0)
    arrays = [load_clip(cache, stem, mmap=False) for stem in STEMS]
    clean = {"video": make("augment", "default").eval()(torch.from_numpy(np.stack([v for v, _ in arrays]))),
             "audio": torch.from_numpy(np.stack([a for _, a in arrays]))}
    return out, clean


def test_removal_gives_zeros_after_normalisation(fake_cache):
    out, clean = _batch(fake_cache, Condition("video_removed", None))
    assert out["video"].shape == clean["video"].shape and torch.all(out["video"] == 0)
    assert torch.equal(out["audio"], clean["audio"])
    ref = remove_modality(clean["video"], clean["audio"], "video")
    assert torch.equal(out["video"], ref[0])
    out, clean = _batch(fake_cache, Condition("audio_removed", None))
    assert torch.all(out["audio"] == 0) and torch.equal(out["video"], clean["video"])
    # zero is the dataset mean colour: a frame painted in the mean normalises to (almost exactly) 0
    mean = torch.tensor([0.485, 0.456, 0.406]) * 255
    painted = mean.view(1, 1, 1, 1, 3).expand(1, 2, 4, 4, 3).round().to(torch.uint8)
    assert make("augment", "default").eval()(painted).abs().max() < 0.5 / 255 / 0.224 + 1e-6


def test_one_removed_zeroes_exactly_one_modality_per_clip_about_half_each(fake_cache):
    out, clean = _batch(fake_cache, Condition("one_removed", None))
    video_gone = [bool(torch.all(v == 0)) for v in out["video"]]
    audio_gone = [bool(torch.all(a == 0)) for a in out["audio"]]
    assert all(v != a for v, a in zip(video_gone, audio_gone, strict=True))
    assert video_gone == out["drop_video"].tolist() and audio_gone == out["drop_audio"].tolist()
    for i, gone in enumerate(video_gone):
        kept = out["audio"][i] if gone else out["video"][i]
        assert torch.equal(kept, clean["audio"][i] if gone else clean["video"][i])
    assert 6 <= sum(video_gone) <= 18  # 24 clips, 50/50


@pytest.mark.parametrize("part", ["lower", "upper"])
def test_occlusion_sets_the_stated_rows_to_zero_after_normalisation(fake_cache, part):
    out, clean = _batch(fake_cache, Condition(f"video_occlude_{part}", None))
    rows = slice(16, 32) if part == "lower" else slice(0, 16)
    other = slice(0, 16) if part == "lower" else slice(16, 32)
    assert torch.all(out["video"][..., rows, :] == 0)
    assert torch.equal(out["video"][..., other, :], clean["video"][..., other, :])
    assert torch.equal(out["audio"], clean["audio"])


# ---------------------------------------------------------------------------------------------------- config, old caches

def test_suite_config_is_checked_by_key():
    assert parse_suite(compose_eval(["ckpt_path=x"], Path("unused")).get("robustness")) is None  # robustness=none
    default = parse_suite(compose_eval(["ckpt_path=x", "robustness=default"], Path("unused")).robustness)
    assert {c.corruption for c in default.conditions} == set(C.CORRUPTIONS)
    assert [c.level for c in default.conditions if c.corruption == "audio_noise"] == [20, 10, 5, 0]
    bad = [({"corruptions": {"fog": [1]}}, "robustness.corruptions.fog: unknown corruption"),
           ({"corruptions": {"video_removed": [1]}}, "has no levels"),
           ({"corruptions": {"video_blur": [0]}}, "must be > 0"),
           ({"corruptions": {"video_drop_frames": [1.5]}}, r"must be in \[0, 1\]"),
           ({"corruptions": {"audio_noise": []}}, "non-empty list"),
           ({"corruptions": {"audio_noise": [10, 10.0]}}, "listed twice"),
           ({"seed": -1, "corruptions": {"audio_removed": None}}, "robustness.seed"),
           ({"levels": 3, "corruptions": {"audio_removed": None}}, "does not take levels")]
    for cfg, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_suite(cfg)


def test_an_old_cache_is_refused_naming_audio_npy_and_the_rebuild(tmp_path, fake_cache):
    record = json.loads((fake_cache / "settings.json").read_text())
    (tmp_path / "settings.json").write_text(json.dumps({**record, "format": 2}))
    with pytest.raises(CacheError, match=r"(?s)cache format 2.*audio\.npy.*python preprocess\.py.*preprocess\.force=true"):
        require_audio_window(tmp_path)
    require_audio_window(fake_cache)  # the current format passes
    require_audio_window(tmp_path / "not-built-yet")  # a cache evaluation will build passes


# ---------------------------------------------------------------------------------------------------- outputs

def test_document_csv_and_figure(tmp_path):
    meta = {"run_id": "r1", "fusion": "cfnsr", "fold": 1, "seed": 3, "protocol": "paper", "backbone": "tiny",
            "dataset": "synthetic", "recipe_hash": "abc", "protocol_note": protocol_note("paper", "best-e003.ckpt"),
            "units": {"audio_noise": "SNR (dB)", "video_removed": None}}
    rows = [{"corruption": "audio_noise", "level": 10.0, "war": 0.4, "uar": 0.35, "f1": 0.3, "n": 120},
            {"corruption": "audio_noise", "level": 0.0, "war": 0.2, "uar": 0.2, "f1": 0.1, "n": 120},
            {"corruption": "video_removed", "level": None, "war": 0.125, "uar": 0.125, "f1": 0.03, "n": 120}]
    doc = robustness_document(meta, {"war": 0.5, "uar": 0.45, "f1": 0.4, "n": 120, "confusion": [[1]]}, rows)
    assert set(doc) == {"schema", "meta", "clean", "rows"} and doc["schema"] == 1
    assert doc["clean"] == {"war": 0.5, "uar": 0.45, "f1": 0.4, "n": 120}
    assert [tuple(r) for r in doc["rows"]] == [ROW_FIELDS] * 3
    assert [r["relative"] for r in doc["rows"]] == [pytest.approx(0.8), pytest.approx(0.4), pytest.approx(0.25)]
    assert "selected on the test fold" in meta["protocol_note"]
    assert "not used to select" in protocol_note("clean", "best-e003.ckpt")
    paths = write_outputs(tmp_path, doc)
    assert json.loads(paths["json"].read_text()) == doc
    table = list(csv.DictReader(paths["csv"].open()))
    assert [r["corruption"] for r in table] == ["clean", "audio_noise", "audio_noise", "video_removed"]
    assert table[3]["level"] == "" and table[1]["run_id"] == "r1" and float(table[2]["relative"]) == 0.4
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["robustness.csv", "robustness.json", "robustness.png"]


# ---------------------------------------------------------------------------------------------------- modality dropout

def test_modality_dropout_off_draws_nothing_on_drops_one_modality_with_the_missing_policy():
    from cfnsr.data.datamodule import EmotionDataModule

    assert make("augment", "default").modality_dropout == 0.0
    torch.manual_seed(0)
    state = torch.get_rng_state()
    assert make("augment", "default", modality_dropout=0.0).modality_dropout_masks(8) is None
    assert torch.equal(torch.get_rng_state(), state)  # runs without dropout draw exactly what they drew before
    with pytest.raises(ValueError, match="modality_dropout"):
        make("augment", "default", modality_dropout=1.5)

    dm = EmotionDataModule(root="unused", cache_dir="unused", settings=SETTINGS, split=None, batch_size=2,
                           augment=make("augment", "default", modality_dropout=1.0, scale=(1, 1), flip=0.0),
                           corpus=None, eval_batch_size=None, num_workers=0, pin_memory=False, storage="mmap", seed=0, allow_missing_clips=False)
    batch = {"video": torch.randint(0, 256, (64, 2, 8, 8, 3), dtype=torch.uint8),
             "audio": torch.randn(64, 13, 20) + 5, "label": torch.zeros(64, dtype=torch.long)}
    dm.trainer = SimpleNamespace(training=True)
    out = dm.on_after_batch_transfer(dict(batch), 0)
    video_gone = torch.stack([torch.all(v == 0) for v in out["video"]])
    audio_gone = torch.stack([torch.all(a == 0) for a in out["audio"]])
    assert torch.all(video_gone ^ audio_gone)  # p=1: every clip loses exactly one modality
    assert 16 <= int(video_gone.sum()) <= 48
    torch.manual_seed(1)
    again = dm.on_after_batch_transfer(dict(batch), 0)
    torch.manual_seed(1)
    assert torch.equal(dm.on_after_batch_transfer(dict(batch), 0)["audio"], again["audio"])  # global RNG only
    dm.trainer = SimpleNamespace(training=False)
    out = dm.on_after_batch_transfer(dict(batch), 0)
    assert not any(bool(torch.all(v == 0)) for v in out["video"]) and torch.equal(out["audio"], batch["audio"])


# ---------------------------------------------------------------------------------------------------- real evaluations

# Every corruption of the default suite at its strongest level (recomputing 120 MFCCs per audio condition is the
# slow part of an evaluation on this CPU, so the tests do not run every level).
STRONGEST = ["robustness=default", "~robustness.corruptions",
             "+robustness.corruptions={audio_noise: [0], audio_shift: [0.5], audio_removed: null, video_noise: [40], "
             "video_blur: [4], video_drop_frames: [0.75], video_occlude_lower: null, video_occlude_upper: null, "
             "video_removed: null, one_removed: null}"]


@pytest.fixture(scope="module")
def unimodal_runs(tiny_data_dir: Path, tmp_path_factory) -> dict:
    """audio_only and video_only trained for one epoch on the tiny corpus, each evaluated under every corruption."""
    from cfnsr.tasks.evaluate import evaluate
    from cfnsr.tasks.train import train

    runs = {}
    for fusion in ("audio_only", "video_only"):
        out = tmp_path_factory.mktemp(fusion)
        record = train(compose_train([f"fusion={fusion}", "trainer.max_epochs=1", "measure_gflops=false"],
                                     tiny_data_dir, out / "run"))
        eval_dir = out / "eval"
        result = evaluate(compose_eval([f"ckpt_path={record['best_ckpt']}", *STRONGEST], eval_dir, tiny_data_dir))
        runs[fusion] = {"record": record, "result": result, "dir": eval_dir}
    return runs


def _confusion(run: dict, tag: str) -> list[list[int]]:
    path = run["dir"] / ("test.json" if tag == "test" else f"robustness/{tag}.json")
    return json.loads(path.read_text())["confusion"]


@pytest.mark.slow
@pytest.mark.parametrize(("fusion", "other"), [("audio_only", "video"), ("video_only", "audio")])
def test_a_unimodal_model_ignores_every_corruption_of_the_other_modality(unimodal_runs, fusion, other):
    run = unimodal_runs[fusion]
    doc = json.loads((run["dir"] / "robustness.json").read_text())
    assert doc == run["result"]["robustness"]
    clean = doc["clean"]
    assert {r["corruption"] for r in doc["rows"]} == set(C.CORRUPTIONS)
    hits = [r for r in doc["rows"] if C.CORRUPTIONS[r["corruption"]].modality == other]
    assert len(hits) >= 3
    for r in hits:
        assert (r["war"], r["uar"], r["f1"], r["n"], r["relative"]) == (clean["war"], clean["uar"], clean["f1"],
                                                                       clean["n"], 1.0), r
        tag = Condition(r["corruption"], r["level"]).tag
        assert _confusion(run, tag) == _confusion(run, "test")
    # and its own modality's corruptions do change something (the invariance is not an accident of the harness)
    own = [r for r in doc["rows"] if C.CORRUPTIONS[r["corruption"]].modality not in (other, C.BOTH)]
    assert any(_confusion(run, Condition(r["corruption"], r["level"]).tag) != _confusion(run, "test") for r in own)


@pytest.mark.slow
@pytest.mark.parametrize(("fusion", "only"), [("audio_only", "audio"), ("video_only", "video")])
def test_removing_the_only_modality_gives_a_constant_prediction_and_uar_one_eighth(unimodal_runs, fusion, only):
    run = unimodal_runs[fusion]
    (row,) = [r for r in run["result"]["robustness"]["rows"] if r["corruption"] == f"{only}_removed"]
    confusion = np.array(_confusion(run, f"{only}_removed"))
    assert confusion.sum() == row["n"] == 120 and np.all(confusion.sum(axis=1) > 0)  # every class in the fold
    (predicted,) = np.flatnonzero(confusion.sum(axis=0))  # every clip gets the same class
    assert row["uar"] == 0.125  # recall 1 for that class, 0 for the other 7
    assert row["war"] == pytest.approx(confusion[predicted, predicted] / 120)


@pytest.mark.slow
def test_outputs_carry_the_checkpoint_metadata_and_repeat_exactly(unimodal_runs, tiny_data_dir, tmp_path):
    from cfnsr.runs.record import read_record
    from cfnsr.tasks.evaluate import evaluate

    run = unimodal_runs["audio_only"]
    doc = run["result"]["robustness"]
    record = read_record(run["record"]["run_dir"])
    ckpt = torch.load(run["record"]["best_ckpt"], map_location="cpu", weights_only=True)
    meta = doc["meta"]
    assert meta["run_id"] == ckpt["cfnsr_run_id"] == record["run_id"]
    for key in ("fusion", "fold", "seed", "protocol", "backbone", "dataset", "recipe_hash"):
        assert meta[key] == record[key], key
    assert "clean protocol" in meta["protocol_note"]
    assert doc["clean"] == {k: run["result"]["test"][k] for k in ("war", "uar", "f1", "n", "split_clips")}
    assert len(doc["rows"]) == len(C.CORRUPTIONS) and all(tuple(r) == ROW_FIELDS for r in doc["rows"])
    assert (run["dir"] / "robustness.png").stat().st_size > 1000
    assert len(list(csv.DictReader((run["dir"] / "robustness.csv").open()))) == len(C.CORRUPTIONS) + 1
    # a second evaluation (random corruptions only) gives the same numbers, and the same confusion matrices
    again = evaluate(compose_eval([f"ckpt_path={run['record']['best_ckpt']}", "robustness=default",
                                   "~robustness.corruptions",
                                   "+robustness.corruptions={audio_noise: [0], one_removed: null}"], tmp_path,
                                  tiny_data_dir))
    assert len(again["robustness"]["rows"]) == 2
    first = {(r["corruption"], r["level"]): r for r in doc["rows"]}
    for r in again["robustness"]["rows"]:
        assert r == first[(r["corruption"], r["level"])]
        tag = Condition(r["corruption"], r["level"]).tag
        assert (json.loads((tmp_path / "robustness" / f"{tag}.json").read_text())["confusion"]
                == _confusion(run, tag))


@pytest.mark.slow
def test_robustness_on_an_old_cache_stops_before_testing(unimodal_runs, tiny_data_dir, tmp_path):
    from cfnsr.tasks.evaluate import evaluate

    old = tmp_path / "old_cache"
    old.mkdir()
    record = {**SETTINGS.to_dict(), "format": 2, "hash": "old"}
    (old / "settings.json").write_text(json.dumps(record))
    cfg = compose_eval([f"ckpt_path={unimodal_runs['video_only']['record']['best_ckpt']}", "robustness=default",
                        f"data.cache_dir={old}"], tmp_path / "eval", tiny_data_dir)
    with pytest.raises(CacheError, match=r"(?s)audio\.npy.*preprocess\.force=true"):
        evaluate(cfg)
    assert not (tmp_path / "eval" / "test.json").exists()
