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


LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def test_every_relative_markdown_link_resolves():
    """``[text](path#anchor)`` in the README and docs/: the file exists (relative to the page) and, for a Markdown
    target, has the heading; ``(#anchor)`` points into the page itself."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    links, broken = 0, []
    for page in pages:
        prose = re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M))
        for m in LINK.finditer(prose):  # code blocks and spans hold no links
            target = m.group(1)
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            links += 1
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert links >= 40
    assert not broken, "\n".join(broken)
