"""Every ``docs/<name>.md#<section>`` reference in code, configs, docs and the README resolves: the file exists and
has a heading with that anchor (GitHub's rule: lower case, punctuation dropped, spaces to hyphens)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REF = re.compile(r"docs/([\w.-]+\.md)#([\w-]+)")
SEARCHED = ("cfnsr", "conf", "docs", "scripts", "bench", "tests")


def github_anchor(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    return {github_anchor(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", md.read_text(), re.M)}


def _files() -> list[Path]:
    out = [REPO / "README.md", *(REPO / n for n in ("train.py", "evaluate.py", "preprocess.py", "predict.py"))]
    for top in SEARCHED:
        out += [p for p in (REPO / top).rglob("*") if p.suffix in {".py", ".yaml", ".md", ".toml", ".sh"}]
    return [p for p in out if p.is_file()]


def test_github_anchor_rule():
    assert github_anchor("Concat + FC") == "concat--fc"
    assert github_anchor("CFN-SR as run") == "cfn-sr-as-run"


def test_every_docs_reference_resolves():
    refs, broken = 0, []
    for path in _files():
        for m in REF.finditer(path.read_text(errors="replace")):
            refs += 1
            target = REPO / "docs" / m.group(1)
            if not target.is_file():
                broken.append(f"{path.relative_to(REPO)}: {m.group(0)} (no such file)")
            elif m.group(2) not in anchors(target):
                broken.append(f"{path.relative_to(REPO)}: {m.group(0)} (no such heading)")
    assert refs >= 20  # the paper facts are cited from the models and configs
    assert not broken, "\n".join(broken)


def test_no_citation_of_documents_outside_the_repository():
    offenders = [str(p.relative_to(REPO)) for p in _files()
                 if "paper-spec" in p.read_text(errors="replace") and p.name != Path(__file__).name]
    assert not offenders
