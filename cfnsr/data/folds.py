"""Actor-level cross-validation splits.

A fold scheme (``conf/folds/*.yaml``) is data: the list of test-actor sets, one per fold. A protocol decides where
the per-epoch evaluation ("validation") set comes from:

* ``paper``: the validation set *is* the test fold, as in the public MSAF/CFN-SR code, whose reported number is the
  best test accuracy over all epochs (an oracle choice of epoch);
* ``clean``: the validation set is an actor-disjoint block carved out of the training actors (by default the next
  fold's test actors, cyclically), so the test fold is touched once, at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cfnsr.data.ravdess import NUM_ACTORS

PROTOCOLS = ("paper", "clean")


@dataclass(frozen=True)
class Split:
    train_actors: tuple[int, ...]
    val_actors: tuple[int, ...]
    test_actors: tuple[int, ...]


def make_split(
    test_actors: Sequence[Sequence[int]],
    fold: int,
    protocol: str,
    val_actors: Sequence[Sequence[int]] | None = None,
    num_actors: int = NUM_ACTORS,
) -> Split:
    """The train/val/test actors of ``fold`` (1-based) under ``protocol``.

    ``val_actors`` optionally lists the clean-protocol validation actors per fold; by default fold k validates on
    fold k+1's test actors (fold n on fold 1's).
    """
    n = len(test_actors)
    if not 1 <= fold <= n:
        raise ValueError(f"fold={fold} is out of range: this fold scheme has folds 1..{n}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: expected one of {PROTOCOLS}")
    everyone = set(range(1, num_actors + 1))
    test = tuple(sorted(test_actors[fold - 1]))
    unknown = set(test) - everyone
    if unknown:
        raise ValueError(f"fold {fold} tests actors {sorted(unknown)} outside 1..{num_actors}")
    if protocol == "paper":
        val = test
    else:
        val = tuple(sorted(val_actors[fold - 1] if val_actors else test_actors[fold % n]))
        if set(val) & set(test):
            raise ValueError(f"fold {fold}: validation actors {val} overlap the test actors {test}")
    train = tuple(sorted(everyone - set(test) - set(val)))
    return Split(train_actors=train, val_actors=val, test_actors=test)
