"""What a reader must cross to follow one training command, measured on the code as it is.

    python scripts/reading_cost.py [overrides ...]      # default: fusion=msaf fold=2 trainer.max_epochs=2

Runs ``train.py <overrides>`` in this process (on a warm cache: run it twice, the first run prepares the corpus) with
a profile hook and prints:

* the project's Python files one of whose functions ran (module and class bodies run by an import do not count),
  with their line counts;
* the project's Python files imported (executed or not) and the YAML files of the composed config (Hydra's defaults
  list, the project's own configs only);
* the longest functions of the package (``cfnsr/``) by source lines.

The figures are for the closing note of a refactor ("files crossed", "longest function"); nothing asserts on them.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project_file(name: str) -> Path | None:
    p = Path(name)
    if not p.is_absolute() or p.suffix != ".py" or ROOT not in p.resolve().parents or not p.is_file():
        return None
    p = p.resolve()
    rel = p.relative_to(ROOT)
    return None if rel.parts[0] in ("tests", "scripts", "bench", "build") else p


def longest_functions(top: int = 5) -> list[tuple[int, str]]:
    """(lines, 'path:function') of the longest functions under cfnsr/, longest first."""
    found = []
    for path in sorted((ROOT / "cfnsr").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(ROOT)}:{node.name}"))
    return sorted(found, reverse=True)[:top]


def yaml_files(overrides: list[str]) -> list[str]:
    """The project's config files in the composed defaults list of ``train`` with ``overrides``."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        gh = GlobalHydra.instance()
        loader = gh.config_loader()
        defaults = loader.compute_defaults_list("train", overrides, run_mode=None)  # type: ignore[attr-defined]
    # Hydra's own hydra/* options live in its package; the project's hydra/default.yaml is in conf/
    paths = [d.config_path for d in defaults.defaults if d.config_path]
    return [p for p in paths if (ROOT / "conf" / f"{p}.yaml").is_file()]


def main() -> None:
    overrides = sys.argv[1:] or ["fusion=msaf", "fold=2", "trainer.max_epochs=2"]
    executed: set[Path] = set()
    seen: dict[str, Path | None] = {}  # co_filename -> project file (the hook runs on every call: cache the test)

    def profile(frame, event, arg):  # noqa: ANN001 - sys.setprofile's signature
        code = frame.f_code
        # a function ran: not a module or class body run by an import (no CO_OPTIMIZED), nor a comprehension
        if event == "call" and code.co_flags & inspect.CO_OPTIMIZED and (
                not code.co_name.startswith("<") or code.co_name == "<lambda>"):
            name = code.co_filename
            if name not in seen:
                seen[name] = _project_file(name)
            if seen[name] is not None:
                executed.add(seen[name])

    out = tempfile.mkdtemp(prefix="cfnsr-reading-cost-")
    sys.argv = ["train.py", *overrides, f"hydra.run.dir={out}"]
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import runpy

    sys.setprofile(profile)
    try:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        sys.setprofile(None)
    imported = {p for m in list(sys.modules.values())
                if (f := getattr(m, "__file__", None)) and (p := _project_file(f)) is not None}
    lines = {p: len(p.read_text().splitlines()) for p in imported | executed}
    print(f"\n== train.py {' '.join(overrides)} ==")
    print(f"python files executed: {len(executed)} ({sum(lines[p] for p in executed)} lines)")
    for p in sorted(executed):
        print(f"  {lines[p]:5d}  {p.relative_to(ROOT)}")
    print(f"python files imported: {len(imported)} ({sum(lines[p] for p in imported)} lines)")
    ys = yaml_files(overrides)
    print(f"project YAML files composed: {len(ys)}: {' '.join(ys)}")
    print("longest functions (lines):")
    for n, name in longest_functions():
        print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main()
