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

from collections.abc import Sequence
from dataclasses import dataclass

from cfnsr.data.ravdess import NUM_ACTORS

PROTOCOLS = ("paper", "clean", "search")


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
    search_val_actors: Sequence[Sequence[int]] | None = None,
) -> Split:
    """The train/val/test actors of ``fold`` (1-based) under ``protocol``.

    ``val_actors`` optionally lists the clean-protocol validation actors per fold; by default fold k validates on
    fold k+1's test actors (fold n on fold 1's). ``search_val_actors`` likewise lists the search protocol's
    validation actors per fold; by default fold k+2's test actors (cyclically). They must lie inside the clean
    split's training actors of the fold.
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
    if protocol == "search":
        if search_val_actors:
            search_val = tuple(sorted(search_val_actors[fold - 1]))
        elif n >= 3:
            search_val = tuple(sorted(test_actors[(fold + 1) % n]))
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
        return Split(train_actors=tuple(sorted(everyone - set(test) - set(search_val))), val_actors=search_val,
                     test_actors=test)
    return Split(train_actors=train, val_actors=val, test_actors=test)
