"""cfnsr.download.extract: what an extraction that runs again keeps and replaces."""

from __future__ import annotations

import zipfile
from pathlib import Path

from cfnsr.download.extract import ExtractRule, extract_members


def test_a_same_size_file_with_other_bytes_is_replaced_and_an_intact_one_kept(tmp_path: Path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Actor_01/01-01-01.mp4", b"0123456789" * 100)
        zf.writestr("Actor_01/01-01-02.mp4", b"abcdefghij" * 100)
    root, rules = tmp_path / "root", [ExtractRule("*.mp4", "{parent}/{name}")]
    assert extract_members(archive, root, rules) == {"Actor_01/01-01-01.mp4": 1000, "Actor_01/01-01-02.mp4": 1000}
    damaged, intact = root / "Actor_01" / "01-01-01.mp4", root / "Actor_01" / "01-01-02.mp4"
    damaged.write_bytes(b"X" * 1000)  # same size, other bytes (before: kept, since only the size was compared)
    mtime = intact.stat().st_mtime_ns
    extract_members(archive, root, rules)
    assert damaged.read_bytes() == b"0123456789" * 100
    assert intact.stat().st_mtime_ns == mtime  # an intact file is not written again
