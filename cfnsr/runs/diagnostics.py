"""Fusion diagnostics: test accuracy per declared interaction type of a corpus with a manifest.

A corpus may declare, in ``<root>/interactions.json`` (written by the synthetic generator's ``interactions`` preset,
``cfnsr.data.synthetic.interactions``), which interaction type each class belongs to: ``redundant``,
``video_unique``, ``audio_unique``, ``synergy``. :func:`by_interaction` turns a confusion matrix into the accuracy
on the clips of each type's classes (a clip counts as right only when its exact class is predicted), so it needs no
per-clip predictions: ``confusion[i][j]`` counts clips of true class i predicted as j.

Standard library only: the report reads these fields without the training stack.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MANIFEST_FILE = "interactions.json"


class ManifestError(ValueError):
    """An interactions manifest that cannot be used (unreadable, wrong shape, classes outside the model's)."""


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    """``<root>/interactions.json`` as a dict, or None when the corpus has none. Raises ``ManifestError`` naming the
    file when it exists but is not a manifest."""
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: unreadable interactions manifest ({exc})") from exc
    classes = data.get("classes") if isinstance(data, dict) else None
    if not isinstance(classes, dict) or not classes:
        raise ManifestError(f"{path}: no 'classes' mapping (class index -> {{'interaction': type, ...}})")
    for key, entry in classes.items():
        if not str(key).isdigit() or not isinstance(entry, dict) or not isinstance(entry.get("interaction"), str):
            raise ManifestError(f"{path}: classes[{key!r}] must map a class index to {{'interaction': <type>, ...}}")
    return data


def class_types(manifest: dict[str, Any], num_classes: int, where: str = "manifest") -> dict[int, str]:
    """Class index -> interaction type; every index must be in ``0..num_classes-1``."""
    out = {int(k): v["interaction"] for k, v in manifest["classes"].items()}
    bad = sorted(k for k in out if not 0 <= k < num_classes)
    if bad:
        raise ManifestError(f"{where}: class indices {bad} are outside the model's {num_classes} classes")
    return out


def by_interaction(confusion: Sequence[Sequence[int]], manifest: dict[str, Any], where: str = "manifest"
                   ) -> dict[str, dict[str, float | int]]:
    """``{type: {"acc": fraction right, "n": clips}}`` for every type with test clips, in the manifest's type order
    (a type without test clips is left out).

    confusion: K x K counts, rows = true class.
    """
    types = class_types(manifest, len(confusion), where)
    order = list(manifest.get("types") or []) + sorted(set(types.values()) - set(manifest.get("types") or []))
    out: dict[str, dict[str, float | int]] = {}
    for kind in order:
        rows = [k for k, t in types.items() if t == kind]
        if not rows:
            continue
        n = sum(int(sum(confusion[k])) for k in rows)
        if n == 0:  # no test clip of this type (a corpus made with a subset of the classes)
            continue
        right = sum(int(confusion[k][k]) for k in rows)
        out[kind] = {"acc": right / n, "n": n}
    return out


def with_interactions(result: dict[str, Any], root: str | Path) -> dict[str, Any]:
    """A test ``result`` plus ``by_interaction`` (accuracy per interaction type) when the corpus at ``root`` has an
    interactions manifest; unchanged otherwise (training and evaluate both record it this way)."""
    manifest = read_manifest(root)
    if manifest is None or "confusion" not in result:
        return result
    return {**result, "by_interaction": by_interaction(result["confusion"], manifest, str(Path(root) / MANIFEST_FILE))}
