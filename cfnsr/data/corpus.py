"""The corpus seam: what a dataset says about its clips, and nothing else knows.

A corpus class (``conf/data/<corpus>.yaml``: ``corpus._target_``) discovers the clips under a root and says, per
clip, its path, stem (the cache key), label (class index into the YAML's ``class_names``), speaker (the actor, the
unit of the speaker-independent folds) and landmark CSV if any. Preprocessing writes label and speaker into each
cache entry's ``meta.json``; everything after it (data module, robustness, predict, crop gap, report) reads them
from there and the class names from the config, so no module outside a corpus's own file parses file names or
holds emotion names (``tests/data/test_corpus_seam.py`` checks this).

Speaker ids are ints (RAVDESS 1..24, CREMA-D 1001..1091) or, for a user's own folder, strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Speaker = int | str


@dataclass(frozen=True)
class Clip:
    """One clip a corpus hands to preprocessing (plain data: it pickles to worker processes).

    rel: the clip's path relative to the corpus root (the preprocessing report names it); audio: a separate audio
    file to read the sound from instead of the video's own track (CREMA-D's AudioWAV), or None.
    """

    path: str
    rel: str
    stem: str
    label: int
    speaker: Speaker
    landmarks: str | None = None
    audio: str | None = None


class CorpusError(ValueError):
    """A corpus root (or its clip list) that cannot be read as this corpus; the message names the file."""


def skip_entry(file: str, kind: str, reason: str) -> dict[str, str]:
    """One entry of the preprocessing report's skipped list."""
    return {"file": file, "kind": kind, "reason": reason}


class Corpus:
    """Base of the corpus classes. Subclasses set ``name`` and implement ``discover`` and ``speakers``.

    class_names: the YAML's ``data.class_names``; a corpus whose labels are fixed by its file names checks them
    against its own label codes (``check_class_names``).
    """

    name = "corpus"

    def __init__(self, *, class_names: Sequence[str]) -> None:
        self.class_names = tuple(str(c) for c in class_names)
        if not self.class_names:
            raise CorpusError(f"data.class_names of corpus {self.name!r} is empty")
        if len(set(self.class_names)) != len(self.class_names):
            raise CorpusError(f"data.class_names of corpus {self.name!r} repeats a name: {list(self.class_names)}")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def discover(self, root: str | Path) -> tuple[list[Clip], list[dict[str, str]], int]:
        """(clips to preprocess, skipped [{file, kind, reason}], video files found) under ``root``."""
        raise NotImplementedError

    def speakers(self, root: str | Path | None = None) -> list[Speaker]:
        """Every speaker of the corpus in fold order (the k-fold scheme cuts this list into contiguous blocks)."""
        raise NotImplementedError

    def expected_stems(self, speakers: Sequence[Speaker]) -> dict[Speaker, list[str]] | None:
        """The stems each speaker should have in the cache, or None when the corpus does not know them up front
        (then only an empty split is an error)."""
        return None

    def prepare(self, root: str | Path, workers: int, verbose: bool) -> None:
        """Make ``root`` ready before preprocessing (the synthetic corpus generates itself here); default: nothing."""

    def check_class_names(self, expected: Sequence[str], where: str) -> None:
        """Refuse YAML class names that disagree with the names the corpus's label codes stand for."""
        if tuple(expected) != self.class_names:
            raise CorpusError(f"data.class_names {list(self.class_names)} do not match the {where} label codes, "
                              f"which stand for {list(expected)} in this order")


def meta_label_speaker(meta: dict[str, Any], entry: str) -> tuple[int, Speaker]:
    """(label, speaker) of a cache entry from its meta.json.

    Entries written before the corpus seam carry ``actor`` (the speaker) and ``label``: both are read. An entry
    without them is refused with the rebuild command rather than guessed from its name.
    """
    from cfnsr.data.cache import CacheError

    label = meta.get("label")
    speaker = meta.get("speaker", meta.get("actor"))
    if isinstance(label, bool) or not isinstance(label, int) or speaker is None or isinstance(speaker, bool):
        raise CacheError(f"cache entry {entry}: meta.json has no label/speaker (written by an older cfnsr); "
                         f"rebuild the cache with `python preprocess.py data=<corpus> data.root=<root> "
                         f"preprocess.force=true`")
    if not isinstance(speaker, (int, str)):
        raise CacheError(f"cache entry {entry}: meta.json speaker {speaker!r} is neither an int nor a string")
    return label, speaker


# conf/data/<name>.yaml of this checkout: where a record or checkpoint saved before class names were a config key
# (or recorded) finds them.
DATA_CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "data"


def shipped_class_names(name: Any) -> tuple[str, ...] | None:
    """``class_names`` of the shipped ``conf/data/<name>.yaml``, or None (no such corpus, or no names there)."""
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        return None
    path = DATA_CONF_DIR / f"{name}.yaml"
    if not path.is_file():
        return None
    from omegaconf import OmegaConf

    names = OmegaConf.load(path).get("class_names")
    return None if names is None else tuple(str(n) for n in names)


def instantiate_corpus(node: Any) -> Corpus:
    """The corpus object of a ``data.corpus`` config node. A corpus's own error (``CorpusError``, naming the key or
    file) reaches the user as it is, not wrapped in Hydra's instantiation error."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        corpus = instantiate(node, _convert_="all")
    except InstantiationException as exc:
        if isinstance(exc.__cause__, CorpusError):
            raise exc.__cause__ from None
        raise
    if not isinstance(corpus, Corpus):
        raise CorpusError(f"data.corpus._target_={node.get('_target_')!r} is not a corpus class "
                          f"(a subclass of cfnsr.data.corpus.Corpus)")
    return corpus
