"""Actor-level cross-validation splits.

A fold scheme (``conf/folds/*.yaml``) is data: the list of test-actor sets, one per fold. A protocol decides where
the per-epoch evaluation ("validation") set comes from:

* ``paper``: the validation set *is* the test fold, as in the public MSAF/CFN-SR code, whose reported number is the
  best test accuracy over all epochs (an oracle choice of epoch);
* ``clean``: the validation set is an actor-disjoint block carved out of the training actors (by default the next
  fold's test actors, cyclically), so the test fold is touched once, at the end;
* ``search``: a hyperparameter-search trial for outer fold k (nested). The test fold k is excluded from training and
  validation (and never evaluated); validation is another block drawn from fold k's clean-protocol *training* actors
  (by default fold k+2's test actors, cyclically), so it is neither the test fold nor the block the final clean run
  selects its epoch on; everything else trains. Hyperparameters chosen this way may only be reported on fold k
  (``docs/hparams_search.md``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnsr.data.corpus import Speaker
from cfnsr.data.ravdess import NUM_ACTORS

PROTOCOLS = ("paper", "clean", "search")


@dataclass(frozen=True)
class Split:
    train_actors: tuple[Speaker, ...]
    val_actors: tuple[Speaker, ...]
    test_actors: tuple[Speaker, ...]


def make_split(
    test_actors: Sequence[Sequence[Speaker]],
    fold: int,
    protocol: str,
    val_actors: Sequence[Sequence[Speaker]] | None = None,
    num_actors: int = NUM_ACTORS,
    search_val_actors: Sequence[Sequence[Speaker]] | None = None,
    speakers: Sequence[Speaker] | None = None,
) -> Split:
    """The train/val/test actors of ``fold`` (1-based) under ``protocol``.

    ``val_actors`` optionally lists the clean-protocol validation actors per fold; by default fold k validates on
    fold k+1's test actors (fold n on fold 1's). ``search_val_actors`` likewise lists the search protocol's
    validation actors per fold; by default fold k+2's test actors (cyclically). They must lie inside the clean
    split's training actors of the fold. ``speakers``: every speaker of the corpus (``Corpus.speakers``); without
    it, actors 1..``num_actors``.
    """
    n = len(test_actors)
    if not 1 <= fold <= n:
        raise ValueError(f"fold={fold} is out of range: this fold scheme has folds 1..{n}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: expected one of {PROTOCOLS}")
    everyone = set(speakers) if speakers is not None else set(range(1, num_actors + 1))
    test = tuple(_sorted(test_actors[fold - 1]))
    unknown = set(test) - everyone
    if unknown:
        where = f"1..{num_actors}" if speakers is None else f"the corpus's {len(everyone)} speakers"
        raise ValueError(f"fold {fold} tests actors {sorted(unknown, key=_order)} outside {where}")
    if protocol == "paper":
        val = test
    else:
        val = tuple(_sorted(val_actors[fold - 1] if val_actors else test_actors[fold % n]))
        if set(val) & set(test):
            raise ValueError(f"fold {fold}: validation actors {val} overlap the test actors {test}")
    train = tuple(_sorted(everyone - set(test) - set(val)))
    if protocol == "search":
        if search_val_actors:
            search_val = tuple(_sorted(search_val_actors[fold - 1]))
        elif n >= 3:
            search_val = tuple(_sorted(test_actors[(fold + 1) % n]))
        else:
            raise ValueError(f"protocol=search needs a fold scheme of at least 3 folds (test, clean validation, "
                             f"search validation) or folds.search_val_actors; this one has {n}")
        outside = set(search_val) - set(train)
        if not search_val or outside:
            raise ValueError(
                f"fold {fold}: search validation actors {list(search_val)} must be non-empty and drawn from the "
                f"fold's training actors {list(train)} (not the test actors {list(test)} nor the clean "
                f"validation actors {list(val)}); {sorted(outside)} are not")
        # Train on every actor but the test fold and the search validation block (as many actors as the final
        # clean run trains on, so the tuned settings transfer): the test fold is never touched.
        return Split(train_actors=tuple(_sorted(everyone - set(test) - set(search_val))), val_actors=search_val,
                     test_actors=test)
    return Split(train_actors=train, val_actors=val, test_actors=test)


def _order(speaker: Speaker) -> tuple[int, Any]:
    """Sort key for speaker ids of either type: ints numerically (2 before 10), then strings."""
    return (0, speaker) if isinstance(speaker, int) else (1, str(speaker))


def _sorted(speakers: Any) -> list[Speaker]:
    return sorted(speakers, key=_order)


# ---------------------------------------------------------------- fold schemes for any speaker ids


def kfold_test_speakers(speakers: Sequence[Speaker], k: int) -> list[list[Speaker]]:
    """Speaker-independent k-fold: the speakers, in the order given, cut into k contiguous blocks whose sizes
    differ by at most one (the first ``len % k`` blocks are one larger). RAVDESS's 24 actors with k=6 give the
    paper's folds exactly ([1..4], [5..8], ...); CREMA-D's 91 actors with k=5 give blocks of 19, 18, 18, 18, 18."""
    n = len(speakers)
    if not 2 <= k <= n:
        raise ValueError(f"folds.k={k}: a k-fold split needs 2 <= k <= the {n} speakers of the corpus")
    if len(set(speakers)) != n:
        raise ValueError("the corpus lists a speaker twice")
    base, extra = divmod(n, k)
    out, start = [], 0
    for i in range(k):
        size = base + (1 if i < extra else 0)
        out.append(list(speakers[start:start + size]))
        start += size
    return out


class SplitFileError(ValueError):
    """A split file (speaker -> fold) that cannot be used; the message names the file and line."""


def export_split(test_speakers: Sequence[Sequence[Speaker]], path: str | Path) -> Path:
    """Write a fold scheme as a split file: ``.json`` ({"folds": {speaker: fold}}, folds 1-based) or ``.csv``
    (``speaker,fold`` rows). Returns the path."""
    from cfnsr.files import write_text_atomic

    path = Path(path)
    rows = [(spk, i) for i, block in enumerate(test_speakers, start=1) for spk in block]
    if path.suffix.lower() == ".csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["speaker", "fold"])
        writer.writerows(rows)
        text = buf.getvalue()
    elif path.suffix.lower() == ".json":
        text = json.dumps({"folds": {str(spk): i for spk, i in rows}}, indent=2) + "\n"
    else:
        raise SplitFileError(f"{path}: a split file is .json or .csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def import_split(path: str | Path, speakers: Sequence[Speaker]) -> list[list[Speaker]]:
    """Read a split file (as ``export_split`` writes, or another paper's) into test speakers per fold, each block in
    the corpus's speaker order. Speakers the file does not list are never tested (they always train). Raises
    ``SplitFileError`` naming the file (and CSV line) for an unknown speaker, a bad fold number, a speaker listed
    twice, or a fold number with no speaker."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SplitFileError(f"{path}: cannot read the split file ({exc})") from exc
    by_name = {str(s): s for s in speakers}
    entries: list[tuple[str, Any, str]] = []  # (speaker as written, fold as written, where)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SplitFileError(f"{path}: not valid JSON ({exc})") from exc
        folds = data.get("folds") if isinstance(data, dict) else None
        if not isinstance(folds, dict):
            raise SplitFileError(f'{path}: expected {{"folds": {{"<speaker>": <fold>, ...}}}}')
        entries = [(str(k), v, f"{path}: speaker {k!r}") for k, v in folds.items()]
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or not {"speaker", "fold"} <= {f.strip() for f in reader.fieldnames}:
            raise SplitFileError(f"{path}: line 1 must be the header 'speaker,fold', got {reader.fieldnames}")
        for row in reader:
            row = {str(k).strip(): (v or "").strip() for k, v in row.items() if k is not None}
            entries.append((row["speaker"], row["fold"], f"{path}, line {reader.line_num}"))
    else:
        raise SplitFileError(f"{path}: a split file is .json or .csv")
    assigned: dict[Speaker, int] = {}
    for name, fold, where in entries:
        if name not in by_name:
            raise SplitFileError(f"{where}: speaker {name!r} is not a speaker of this corpus "
                                 f"({len(by_name)} speakers, e.g. {list(by_name)[:5]})")
        try:
            k = int(fold)
        except (TypeError, ValueError):
            k = 0
        if k < 1 or str(fold).strip() != str(k):
            raise SplitFileError(f"{where}: fold {fold!r} must be a positive integer")
        spk = by_name[name]
        if spk in assigned:
            raise SplitFileError(f"{where}: speaker {name!r} is listed twice")
        assigned[spk] = k
    if not assigned:
        raise SplitFileError(f"{path}: lists no speaker")
    n = max(assigned.values())
    empty = [k for k in range(1, n + 1) if k not in assigned.values()]
    if empty:
        raise SplitFileError(f"{path}: fold(s) {empty} have no speaker (folds must be numbered 1..{n})")
    return [[s for s in speakers if assigned.get(s) == k] for k in range(1, n + 1)]


def resolve_test_speakers(folds: Any, speakers: Sequence[Speaker]) -> list[list[Speaker]]:
    """The test speakers per fold of a ``folds`` config: its ``test_actors`` lists when given (the paper schemes),
    else the split file ``path`` (``folds=file``), else a k-fold split of ``speakers`` (``folds=kfold``, ``k``)."""
    listed = folds.get("test_actors")
    if listed is not None:
        return [list(block) for block in listed]
    if folds.get("path"):
        return import_split(folds.path, speakers)
    if folds.get("k"):
        return kfold_test_speakers(list(speakers), int(folds.k))
    raise ValueError(f"folds={folds.get('name')!r}: give test_actors, a split file (path) or k")
