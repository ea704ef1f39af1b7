"""The corpus seam (cfnsr.data.corpus): only corpus modules know file names and emotion names; folds for any
speakers; the RAVDESS fold splits are the ones from before the seam; old cache entries still load."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from tests_helpers import CONF_DIR

from cfnsr.builders.corpus import build_corpus, fold_split, fold_test_speakers
from cfnsr.data.cache import CacheError
from cfnsr.data.corpus import CorpusError, meta_label_speaker
from cfnsr.data.folds import SplitFileError, export_split, import_split, kfold_test_speakers, make_split
from cfnsr.data.settings import PreprocessSettings

PACKAGE = Path(__file__).resolve().parents[2] / "cfnsr"
# The corpus classes and the synthetic corpus generators: the only modules that may hold file-name parsing and
# emotion names.
CORPUS_MODULES = ("data/ravdess.py", "data/cremad.py", "data/folder_corpus.py", "data/corpus.py",
                  "data/synthetic_cremad.py", "data/synthetic/")
EMOTION_WORDS = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised", "anger", "fear",
                 "happiness", "sadness", "surprise"}
# What RAVDESS's module offers for parsing names; other modules may use its corpus class only.
RAVDESS_PARSING = {"parse_name", "RavdessName", "EMOTIONS", "av_speech_names", "discover_clips", "unused_reason",
                   "NUM_CLASSES"}


def _outside_corpus() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if not any(p.relative_to(PACKAGE).as_posix().startswith(m) for m in CORPUS_MODULES)]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def test_no_module_outside_the_corpus_classes_parses_names_or_holds_emotion_names():
    problems = []
    files = _outside_corpus()
    assert len(files) > 80 and PACKAGE / "report" / "figures.py" in files  # the walk sees the package
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        rel = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                words = {w.strip(".,:;()'\"").lower() for w in node.value.split()}
                found = words & EMOTION_WORDS
                if found:
                    problems.append(f"{rel}:{node.lineno}: emotion name(s) {sorted(found)} in {node.value!r}")
                if "Actor_" in node.value:
                    problems.append(f"{rel}:{node.lineno}: RAVDESS folder name in {node.value!r}")
            if isinstance(node, ast.ImportFrom) and node.module in ("cfnsr.data.ravdess", "cfnsr.data.cremad"):
                used = {a.name for a in node.names} & (RAVDESS_PARSING | {"parse_name", "EMOTION_CODES"})
                if used:
                    problems.append(f"{rel}:{node.lineno}: imports name parsing {sorted(used)} from {node.module}")
            if isinstance(node, ast.Attribute) and node.attr in ("parse_name", "RavdessName"):
                problems.append(f"{rel}:{node.lineno}: uses {node.attr}")
    assert not problems, "\n".join(problems)


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides))


# The fold lists of conf/folds/paper.yaml and cfnsr5.yaml as they were before the corpus seam (commit 62659c6),
# split then by make_split over actors 1..24.
OLD_PAPER = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20], [21, 22, 23, 24]]
OLD_CFNSR5 = OLD_PAPER[:5]


@pytest.mark.parametrize("data", ["ravdess", "synthetic"])
@pytest.mark.parametrize("folds,old", [("paper", OLD_PAPER), ("cfnsr5", OLD_CFNSR5)])
@pytest.mark.parametrize("protocol", ["clean", "paper", "search"])
def test_ravdess_and_the_demo_keep_their_splits(data, folds, old, protocol):
    for fold in range(1, len(old) + 1):
        cfg = _compose(f"data={data}", f"folds={folds}", f"fold={fold}", f"protocol={protocol}")
        assert fold_split(cfg) == make_split(old, fold, protocol, num_actors=24)
        assert fold_test_speakers(cfg) == old


def test_kfold_of_the_ravdess_actors_is_the_paper_scheme():
    cfg = _compose("data=ravdess", "folds=kfold", "folds.k=6")
    assert fold_test_speakers(cfg) == OLD_PAPER
    assert fold_split(cfg) == make_split(OLD_PAPER, 1, "clean", num_actors=24)


def test_cremad_defaults_to_five_speaker_independent_folds_of_its_91_actors():
    cfg = _compose("data=cremad")
    assert cfg.folds.name == "kfold" and cfg.data.num_classes == 6
    blocks = fold_test_speakers(cfg)
    assert [len(b) for b in blocks] == [19, 18, 18, 18, 18]
    assert sorted(s for b in blocks for s in b) == list(range(1001, 1092))
    split = fold_split(cfg)
    assert split.test_actors == tuple(range(1001, 1020)) and split.val_actors == tuple(range(1020, 1038))
    assert not set(split.train_actors) & (set(split.test_actors) | set(split.val_actors))
    assert len(split.train_actors) == 91 - 19 - 18
    assert _compose("data=cremad", "folds=paper").folds.name == "paper"  # the user's choice wins


def test_kfold_refuses_more_folds_than_speakers():
    with pytest.raises(ValueError, match="folds.k=4"):
        kfold_test_speakers(["a", "b", "c"], 4)
    assert kfold_test_speakers(["a", "b", "c", "d", "e"], 2) == [["a", "b", "c"], ["d", "e"]]


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_split_files_round_trip_and_drive_the_folds(tmp_path: Path, suffix: str):
    blocks = kfold_test_speakers(list(range(1001, 1092)), 5)
    path = export_split(blocks, tmp_path / f"splits{suffix}")
    assert import_split(path, list(range(1001, 1092))) == blocks
    cfg = _compose("data=cremad", "folds=file", f"folds.path={path}", "fold=2")
    assert fold_test_speakers(cfg) == blocks and fold_split(cfg).test_actors == tuple(blocks[1])


def test_split_file_errors_name_the_line(tmp_path: Path):
    bad = tmp_path / "s.csv"
    bad.write_text("speaker,fold\n1001,1\n1002,x\n")
    with pytest.raises(SplitFileError, match=r"s\.csv, line 3: fold 'x'"):
        import_split(bad, list(range(1001, 1092)))
    bad.write_text("speaker,fold\n1001,1\n999,2\n")
    with pytest.raises(SplitFileError, match=r"line 3: speaker '999' is not a speaker"):
        import_split(bad, list(range(1001, 1092)))
    bad.write_text("speaker,fold\n1001,1\n1002,3\n")
    with pytest.raises(SplitFileError, match=r"fold\(s\) \[2\] have no speaker"):
        import_split(bad, list(range(1001, 1092)))


def test_class_names_are_a_yaml_key_and_num_classes_is_derived():
    cfg = _compose("data=ravdess", "data.class_names=[a,b,c]")
    assert cfg.data.num_classes == 3
    with pytest.raises(CorpusError, match="do not match the RAVDESS emotion label codes"):
        build_corpus(cfg)  # RAVDESS's labels are fixed by its file names: the names must be its 8, in order
    for name in ("ravdess", "synthetic", "cremad"):
        text = (Path(CONF_DIR) / "data" / f"{name}.yaml").read_text()
        assert "num_classes: ${cfnsr_len:${data.class_names}}" in text


def test_old_meta_json_loads_and_one_without_labels_is_refused_with_the_rebuild_command():
    # entries from before the seam: "actor" and "label" (no "speaker")
    assert meta_label_speaker({"stem": "01-01-03-01-01-01-05", "actor": 5, "label": 2}, "e") == (2, 5)
    assert meta_label_speaker({"label": 1, "speaker": "alice"}, "e") == (1, "alice")
    with pytest.raises(CacheError, match="preprocess.force=true"):
        meta_label_speaker({"stem": "x", "face_source": "landmarks"}, "cache/clips/x")


def test_a_new_setting_at_its_neutral_value_keeps_the_old_cache_hash():
    from cfnsr.data import cache

    def with_haar(s: PreprocessSettings) -> str:  # the detector of 62659c6 (BlazeFace since) is part of the hash
        return cache.settings_hash({**s.to_dict(), "face_fallback": "haar"})

    s = PreprocessSettings()
    assert "short_audio" not in s.to_dict()
    # the hashes PreprocessSettings had at commit 62659c6, before short_audio existed: old caches keep loading
    assert with_haar(s) == "fe33f4755a4cadb4" and with_haar(PreprocessSettings(frames=8, size=32)) == "080309453f3e563d"
    assert cache.settings_hash(json.loads(json.dumps(s.to_dict()))) == s.hash
    assert PreprocessSettings(short_audio="pad").hash != s.hash
    with pytest.raises(ValueError, match="short_audio"):
        PreprocessSettings(short_audio="stretch")


def test_the_splits_command_exports_what_the_config_trains_on(tmp_path: Path, capsys):
    from cfnsr.tasks.splits import main

    assert main([str(tmp_path / "r.json"), "data=ravdess", "folds=cfnsr5"]) == 0
    assert "5 folds of 4, 4, 4, 4, 4 speakers" in capsys.readouterr().out
    # actors 21-24 are never tested by cfnsr5: absent from the file, they train in every fold after the import too
    assert import_split(tmp_path / "r.json", list(range(1, 25))) == OLD_CFNSR5
    cfg = _compose("data=ravdess", "folds=file", f"folds.path={tmp_path / 'r.json'}", "fold=5")
    assert fold_split(cfg) == make_split(OLD_CFNSR5, 5, "clean", num_actors=24)
    assert main([str(tmp_path / "r.txt"), "data=ravdess"]) == 2


def test_configs_saved_before_the_seam_get_the_shipped_corpus_and_class_names():
    from omegaconf import OmegaConf

    from cfnsr.predict.model import class_names_of

    old = {"data": {"name": "synthetic", "root": "/r", "generate": {"actors": 6}, "num_classes": 8}}
    corpus = build_corpus(OmegaConf.create(old))
    assert corpus is not None and corpus.generate == {"actors": 6} and len(corpus.speakers()) == 24
    assert class_names_of(old) == tuple(OmegaConf.load(Path(CONF_DIR) / "data" / "ravdess.yaml").class_names)
    assert class_names_of({"data": {**old["data"], "num_classes": 6}}) is None  # a count that does not fit
    assert build_corpus(OmegaConf.create({"data": {"name": "unknown_corpus"}})) is None
