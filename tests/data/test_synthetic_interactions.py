"""The synthetic corpus's ``interactions`` preset: each class pair's declared interaction type is what is rendered,
the synergy bits are balanced (each alone says nothing about the class), the manifest is written, and the
``legacy`` preset's settings (its synthetic.json, hence old corpora and caches) are unchanged."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from cfnsr.data import synthetic as syn
from cfnsr.data.ravdess import RavdessName
from cfnsr.data.synthetic import interactions as I
from cfnsr.runs.diagnostics import by_interaction, read_manifest

# synthetic.json's "config" of the default (legacy) settings, as written before presets existed.
LEGACY_JSON = {
    "actors": 24, "seed": 0, "width": 320, "height": 180, "fps": 15, "duration": 3.3, "sample_rate": 48000,
    "noise": 0.015, "expression_jitter": 1.0, "voice_jitter": 1.0, "emotions": None, "clips_per_actor": None,
    "crf": 28, "audio_bitrate": 48000, "generator_version": 1,
}  # fmt: skip


def test_legacy_settings_are_those_written_before_presets():
    assert syn.SyntheticConfig().to_json() == LEGACY_JSON
    assert syn.SyntheticConfig(preset="legacy").to_json() == LEGACY_JSON
    assert syn.SyntheticConfig(preset="interactions").to_json() == {**LEGACY_JSON, "preset": "interactions"}


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="preset='xor' must be one of legacy, interactions"):
        syn.SyntheticConfig(preset="xor")


def _names(clips_per_actor: int | None) -> list[RavdessName]:
    return syn.selected_names(syn.SyntheticConfig(preset="interactions", clips_per_actor=clips_per_actor))


@pytest.mark.parametrize("clips_per_actor", [None, 32])
def test_synergy_bits_alone_are_independent_of_the_class(clips_per_actor: int | None):
    names = [n for n in _names(clips_per_actor) if n.emotion in I.PAIRS["synergy"]]
    assert names
    for actor in {n.actor for n in names}:
        own = [n for n in names if n.actor == actor]
        cells = Counter((n.emotion, *I.cue_bits(n)) for n in own)
        for emotion in I.PAIRS["synergy"]:
            # Each bit alone: as many clips with 0 as with 1 in each class, so P(class | bit) = P(class).
            for which in (1, 2):
                by_bit = Counter(k[which] for k, c in cells.items() for _ in range(c) if k[0] == emotion)
                assert by_bit[0] == by_bit[1] > 0, (actor, emotion, which, cells)
        # Jointly: the class is the XOR of the two bits.
        for (emotion, f, v) in cells:
            assert (f ^ v) == (emotion == 7), cells
    assert all(I.cue_bits(n) is None for n in _names(None) if n.emotion not in I.PAIRS["synergy"])


def test_the_clips_per_actor_subset_is_balanced_across_classes():
    counts = Counter(n.emotion for n in _names(32))
    assert counts == {e: 4 * 24 for e in range(1, 9)}
    assert {n.intensity for n in _names(32)} == {1}


def _clip(emotion: int, repetition: int, intensity: int = 1) -> RavdessName:
    return RavdessName(1, 1, emotion, intensity, 1, repetition, 1)


def test_what_each_modality_carries_matches_the_declared_type():
    face = {e: I.face_expression_of(_clip(e, 1)) for e in range(1, 9)}
    voice = {e: I.voice_params_of(_clip(e, 1)) for e in range(1, 9)}
    others = lambda pair: [e for e in range(1, 9) if e not in pair]  # noqa: E731
    a, b = I.PAIRS["redundant"]
    assert face[a] != face[b] and voice[a] != voice[b]
    a, b = I.PAIRS["video_unique"]
    assert face[a] != face[b] and voice[a] == voice[b]
    assert all(voice[e] != voice[a] for e in others((a, b)))  # the shared voice names the pair, not the class
    a, b = I.PAIRS["audio_unique"]
    assert face[a] == face[b] and voice[a] != voice[b]
    assert all(face[e] != face[a] for e in others((a, b)))
    # Synergy: the same two looks and two voices in both classes, chosen by the bits.
    six, seven = I.PAIRS["synergy"]
    looks = {e: {I.face_expression_of(_clip(e, r)) for r in (1, 2)} for e in (six, seven)}
    voices = {e: {I.voice_params_of(_clip(e, r)) for r in (1, 2)} for e in (six, seven)}
    assert looks[six] == looks[seven] and len(looks[six]) == 2
    assert voices[six] == voices[seven] and len(voices[six]) == 2
    assert not looks[six] & set(face.values()) - {face[six], face[seven]}
    assert I.face_expression_of(_clip(six, 1)) == I.face_expression_of(_clip(seven, 1))
    assert I.voice_params_of(_clip(six, 1)) != I.voice_params_of(_clip(seven, 1))


def test_rendered_clips_use_the_preset(monkeypatch: pytest.MonkeyPatch):
    cfg = syn.SyntheticConfig(preset="interactions", actors=1, width=128, height=72, fps=10, duration=3.0,
                              expression_jitter=0.0, voice_jitter=0.0)
    legacy = syn.make_config(cfg, preset="legacy")
    name = _clip(7, 2)  # face bit 1, voice bit 0
    clip = syn.render_clip(name, cfg)
    look = syn.actor_look(cfg.seed, 1)
    assert clip.params.face == I._FACE_SYN[1].scaled(look.expressiveness)
    assert clip.params.voice == I._VOICE_SYN[0]
    assert syn.render_clip(name, legacy).params.voice == syn.voice_params(7, 1)


def test_corpus_writes_its_manifest_and_refuses_another_preset(tmp_path: Path):
    root = syn.generate_corpus(tmp_path / "c", workers=1, progress=False, preset="interactions", actors=1,
                               width=128, height=72, fps=10, duration=3.0, emotions=[6, 7], clips_per_actor=4)
    manifest = read_manifest(root)
    assert manifest == json.loads((root / I.MANIFEST_FILE).read_text()) == I.manifest()
    assert {c["interaction"] for c in manifest["classes"].values()} == set(I.INTERACTION_TYPES)
    assert manifest["classes"]["6"] == {**manifest["classes"]["6"], "emotion": 7, "interaction": "synergy"}
    assert len(list(root.glob("Actor_01/*.mp4"))) == 4
    with pytest.raises(syn.SyntheticConfigMismatch, match="preset: found 'interactions', wanted None"):
        syn.generate_corpus(root, workers=1, progress=False, actors=1, width=128, height=72, fps=10, duration=3.0,
                            emotions=[6, 7], clips_per_actor=4)
    legacy = syn.generate_corpus(tmp_path / "l", workers=1, progress=False, actors=1, width=128, height=72, fps=10,
                                 duration=3.0, emotions=[1], clips_per_actor=1)
    assert read_manifest(legacy) is None


def test_by_interaction_counts_exact_class_hits():
    manifest = I.manifest()
    confusion = [[0] * 8 for _ in range(8)]
    for k in range(8):
        confusion[k][k] = 3
    confusion[5][6] = 3  # fearful predicted as disgust: the synergy pair half wrong
    confusion[1][0] = 1  # one calm clip as neutral (an audio-unique miss)
    out = by_interaction(confusion, manifest)
    assert list(out) == list(I.INTERACTION_TYPES)
    assert out["synergy"] == {"acc": 6 / 9, "n": 9}
    assert out["audio_unique"] == {"acc": 6 / 7, "n": 7}
    assert out["redundant"] == {"acc": 1.0, "n": 6}
    only_synergy = [[0] * 8 for _ in range(8)]
    only_synergy[5][5] = only_synergy[6][5] = 2
    assert by_interaction(only_synergy, manifest) == {"synergy": {"acc": 0.5, "n": 4}}  # types without clips: left out


@pytest.mark.parametrize(("text", "match"), [
    ("{not json", "unreadable interactions manifest"),
    ('{"classes": []}', "no 'classes' mapping"),
    ('{"classes": {"x": {"interaction": "synergy"}}}', r"classes\['x'\]"),
])
def test_a_broken_manifest_is_named(tmp_path: Path, text: str, match: str):
    (tmp_path / I.MANIFEST_FILE).write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        read_manifest(tmp_path)
    assert str(tmp_path / I.MANIFEST_FILE) in str(err.value)


def test_manifest_classes_beyond_the_model_are_refused():
    manifest = {"classes": {"9": {"interaction": "synergy"}}}
    with pytest.raises(ValueError, match=r"class indices \[9\] are outside the model's 8 classes"):
        by_interaction([[0] * 8 for _ in range(8)], manifest, "m.json")


def test_late_fusion_cannot_fit_xor():
    """The 75 % bound: for any additive score difference d(f, v) = g(f) + h(v) on the four equally frequent
    (face bit, voice bit) cells, at most 3 of the 4 XOR labels can be right (checked over every sign pattern)."""
    best = 0
    for g0, g1, h0, h1 in itertools.product([-2, -1, 1, 2], repeat=4):
        g, h = (g0, g1), (h0, h1)
        right = sum((g[f] + h[v] > 0) == bool(f ^ v) for f in (0, 1) for v in (0, 1))
        best = max(best, right)
    assert best == 3
