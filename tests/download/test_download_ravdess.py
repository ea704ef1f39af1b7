"""``python download.py data=ravdess``: against a loopback server that serves RAVDESS-named zips through
Zenodo-shaped record JSON (download.mirror points the client at it)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from disk_helpers import fill, small_disk  # noqa: E402
from loopback_server import Server, serving, zip_bytes
from tests_helpers import CONF_DIR

from cfnsr.download.http import DiskFullError, DownloadError, HttpClient
from cfnsr.download.run import download

REPO = Path(__file__).resolve().parents[2]
AV = ["01-01-03-01-01-01-{a:02d}", "01-01-05-02-02-01-{a:02d}"]  # full-AV speech: extracted
OTHER = "02-01-03-01-01-01-{a:02d}"  # video-only speech: in the real zips, not used


def clip_bytes(stem: str, size: int = 40_000) -> bytes:
    """Incompressible bytes standing in for a clip (so a zip is as large as its members)."""
    return hashlib.shake_256(stem.encode()).digest(size)


def actor_zip(a: int) -> bytes:
    members = {f"Actor_{a:02d}/{s.format(a=a)}.mp4": clip_bytes(s.format(a=a)) for s in [*AV, OTHER]}
    return zip_bytes(members)


def landmark_zip(actors: list[int]) -> bytes:
    members = {}
    for a in actors:
        for s in [*AV, "01-02-03-01-01-01-{a:02d}"]:  # the song CSV is not extracted
            members[f"Actor_{a:02d}/{s.format(a=a)}.csv"] = f"frame,x_0\n1,{a}\n".encode()
    return zip_bytes(members)


def publish(srv: Server, actors: list[int], videos: dict[str, bytes] | None = None) -> dict[str, str]:
    """The two records on ``srv``; returns {zip key: content path}."""
    videos = videos if videos is not None else {f"Video_Speech_Actor_{a:02d}.zip": actor_zip(a) for a in actors}
    paths = srv.add_zenodo_record(1188976, {**videos, "Audio_Speech_Actors_01-24.zip": b"not wanted"})
    paths |= srv.add_zenodo_record(3255102, {"FacialTracking_Actors_01-24.zip": landmark_zip(actors)})
    return paths


def config(root: Path, srv: Server, actors: list[int], *overrides: str):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("download", overrides=[
            "data=ravdess", f"data.root={root}", f"download.mirror={srv.url}", "download.backoff=0",
            "download.workers=2", "download.reserve_gib=0", f"download.sources.videos.count={len(actors)}",
            *overrides])


def extracted(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".download" not in p.parts)


def expected_layout(actors: list[int]) -> list[str]:
    return sorted([f"Actor_{a:02d}/{s.format(a=a)}.mp4" for a in actors for s in AV]
                  + [f"landmarks/{s.format(a=a)}.csv" for a in actors for s in AV])


def test_download_extracts_av_speech_and_landmarks_and_a_rerun_makes_no_request(tmp_path: Path, capsys):
    actors = [1, 2, 3]
    with serving() as srv:
        paths = publish(srv, actors)
        download(config(tmp_path, srv, actors))
        out = capsys.readouterr().out
        assert out.index("CC BY-NC-SA 4.0") < out.index("zenodo-1188976: 3 files")  # licence before any download
        assert extracted(tmp_path) == expected_layout(actors)  # no video-only clip, no song CSV, no audio zip
        assert (tmp_path / "Actor_02" / f"{AV[1].format(a=2)}.mp4").read_bytes() == clip_bytes(AV[1].format(a=2))
        assert not list((tmp_path / ".download").glob("*.zip"))  # archives removed after extraction
        assert srv.requests_for("/api/records/1188976/files/Audio_Speech_Actors_01-24.zip/content") == []
        assert len(srv.requests_for(paths["Video_Speech_Actor_01.zip"])) == 1
        before = {p: (tmp_path / p).stat().st_mtime_ns for p in extracted(tmp_path)}

        srv.log.clear()
        download(config(tmp_path, srv, actors))
        assert srv.log == []  # everything present: not even the record listing is requested
        assert "nothing to download" in capsys.readouterr().out
        assert {p: (tmp_path / p).stat().st_mtime_ns for p in extracted(tmp_path)} == before

        # A clip deleted by hand: the listing and that actor's zip only.
        (tmp_path / "Actor_03" / f"{AV[0].format(a=3)}.mp4").unlink()
        download(config(tmp_path, srv, actors))
        fetched = sorted({r.path for r in srv.log})
        assert fetched == ["/api/records/1188976", paths["Video_Speech_Actor_03.zip"]]  # landmarks: complete
        assert extracted(tmp_path) == expected_layout(actors)


def test_dropped_connection_resumes_with_a_range_request(tmp_path: Path):
    actors = [1, 2]
    with serving() as srv:
        paths = publish(srv, actors)
        path = paths["Video_Speech_Actor_01.zip"]
        size = len(srv.routes[path])
        srv.faults.drop[path] = [size // 2]
        download(config(tmp_path, srv, actors))
        first, second = srv.requests_for(path)
        assert "Range" not in first.headers and first.sent == size // 2
        assert second.headers["Range"] == f"bytes={size // 2}-" and second.headers["If-Range"].startswith('"')
        assert second.status == 206 and second.sent == size - size // 2  # the rest only, not the file again
        assert extracted(tmp_path) == expected_layout(actors)


def test_a_server_ignoring_range_restarts_the_file_cleanly(tmp_path: Path):
    actors = [1]
    with serving() as srv:
        paths = publish(srv, actors)
        path = paths["Video_Speech_Actor_01.zip"]
        size = len(srv.routes[path])
        srv.faults.drop[path] = [size // 3]
        srv.faults.ignore_range.add(path)
        download(config(tmp_path, srv, actors))
        first, second = srv.requests_for(path)
        assert second.headers.get("Range") == f"bytes={size // 3}-" and second.status == 200 and second.sent == size
        assert extracted(tmp_path) == expected_layout(actors)  # md5 verified: no duplicated first third


def test_checksum_mismatch_is_retried_once_then_names_the_file(tmp_path: Path):
    actors = [1, 2]
    with serving() as srv:
        paths = publish(srv, actors)
        bad = paths["Video_Speech_Actor_02.zip"]
        srv.faults.corrupt[bad] = 2
        with pytest.raises(DownloadError, match=r"checksum mismatch for Video_Speech_Actor_02\.zip twice.*md5"):
            download(config(tmp_path, srv, actors))
        assert len(srv.requests_for(bad)) == 2
        assert not (tmp_path / "Actor_02").exists() and not (tmp_path / ".download" / "Video_Speech_Actor_02.zip").exists()
        assert (tmp_path / "Actor_01" / f"{AV[0].format(a=1)}.mp4").is_file()  # the good files are kept

        srv.log.clear()
        srv.faults.corrupt[bad] = 1  # corrupted once: the retry is enough
        download(config(tmp_path, srv, actors))
        assert len(srv.requests_for(bad)) == 2 and srv.requests_for(paths["Video_Speech_Actor_01.zip"]) == []
        assert extracted(tmp_path) == expected_layout(actors)


def test_a_404_names_the_url_without_retrying(tmp_path: Path):
    actors = [1, 2]
    with serving() as srv:
        paths = publish(srv, actors)
        gone = paths["Video_Speech_Actor_01.zip"]
        srv.faults.status[gone] = 404
        with pytest.raises(DownloadError, match=f"HTTP 404 .* for {srv.url}{gone}"):
            download(config(tmp_path, srv, actors))
        assert len(srv.requests_for(gone)) == 1


def test_transient_errors_are_retried_with_exponential_backoff(tmp_path: Path):
    waits: list[float] = []
    with serving() as srv:
        srv.routes["/f"] = b"x" * 1000
        srv.faults.fail_times["/f"] = 3
        client = HttpClient(retries=3, backoff=0.5, timeout=10, mirror=srv.url, sleep=waits.append)
        assert client.get_bytes("https://example.org/f") == b"x" * 1000
        assert waits == [0.5, 1.0, 2.0] and len(srv.requests_for("/f")) == 4
        srv.faults.fail_times["/f"] = 9
        with pytest.raises(DownloadError, match=r"gave up after 4 attempts"):
            client.get_bytes("https://example.org/f")


def test_too_little_free_space_stops_before_downloading_and_says_how_much(tmp_path: Path):
    actors = [1, 2]
    with serving() as srv:
        paths = publish(srv, actors)
        with pytest.raises(DiskFullError, match=rf"into {tmp_path}: needs [0-9.]+ MiB \([0-9.]+ MiB to download "
                                                rf"\+ up to [0-9.]+ MiB extracted\) plus 100000.00 GiB head room, "
                                                rf"but .* has [0-9.]+ GiB free"):
            download(config(tmp_path, srv, actors, "download.reserve_gib=100000"))
        assert all(srv.requests_for(p) == [] for p in paths.values())  # the record listings only


def test_zip_entry_with_path_traversal_is_refused_naming_it(tmp_path: Path):
    root = tmp_path / "root"
    evil = zip_bytes({"Actor_01/01-01-03-01-01-01-01.mp4": b"ok", "../01-01-05-01-01-01-01.mp4": b"escaped"})
    absolute = zip_bytes({"/tmp/01-01-05-01-01-01-01.mp4": b"escaped"})
    for archive, entry in ((evil, "../01-01-05-01-01-01-01.mp4"), (absolute, "/tmp/01-01-05-01-01-01-01.mp4")):
        with serving() as srv:
            publish(srv, [1], {"Video_Speech_Actor_01.zip": archive})
            with pytest.raises(DownloadError, match=f"refusing zip entry '{entry}'"):
                download(config(root, srv, [1]))
        assert not (tmp_path / "01-01-05-01-01-01-01.mp4").exists() and not (root / "Actor_01").exists()


def test_a_disk_filling_up_mid_download_is_named_and_leaves_nothing_looking_complete(tmp_path: Path):
    # a real 2 MiB tmpfs (needs root: under CI=true its absence fails the test, elsewhere it skips)
    with small_disk(tmp_path / "small", "2m") as disk:
        root = disk / "RAVDESS"
        actors = [1]
        with serving() as srv:
            paths = publish(srv, actors)
            path = paths["Video_Speech_Actor_01.zip"]
            # after the pre-check passed, something else takes the space
            srv.faults.before_body[path] = lambda: fill(disk, leave=40_000)
            with pytest.raises(DownloadError, match=r"disk full while writing .*Video_Speech_Actor_01\.zip\.part"):
                download(config(root, srv, actors, "download.workers=1"))
            assert not (root / ".download" / "Video_Speech_Actor_01.zip").exists()
            assert not (root / "Actor_01").exists()

            del srv.faults.before_body[path]
            (disk / ".ballast").unlink()
            srv.log.clear()
            download(config(root, srv, actors))
            assert srv.requests_for(path)[0].headers["Range"].startswith("bytes=")  # resumed the partial file
            assert extracted(root) == expected_layout(actors)


def test_entry_point_prints_the_licence_and_exits_2_with_the_reason(tmp_path: Path):
    with serving() as srv:
        srv.add_zenodo_record(1188976, {})
        res = subprocess.run([sys.executable, "download.py", "data=ravdess", f"data.root={tmp_path / 'r'}",
                              f"download.mirror={srv.url}", f"hydra.run.dir={tmp_path / 'run'}"],
                             cwd=REPO, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 2, res.stdout + res.stderr
    assert "CC BY-NC-SA 4.0" in res.stdout
    assert "expected 24 files matching 'Video_Speech_Actor_*.zip', the record lists 0" in res.stderr


def test_a_corrupt_member_leaves_no_half_clip_under_its_name(tmp_path: Path):
    import io
    import zipfile

    big = clip_bytes("big", 3 << 20)  # larger than one copy block: part of it is written before the CRC fails
    name = f"Actor_01/{AV[0].format(a=1)}.mp4"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(name, big)
    data = bytearray(buf.getvalue())
    data[data.find(big) + len(big) - 10] ^= 0xFF  # the archive's md5 matches its listing; the member's CRC does not
    with serving() as srv:
        publish(srv, [1], {"Video_Speech_Actor_01.zip": bytes(data)})
        with pytest.raises(DownloadError, match=f"entry '{name}' is corrupt"):
            download(config(tmp_path, srv, [1]))
    assert list((tmp_path / "Actor_01").iterdir()) == []  # neither the clip nor its temporary sibling


def test_zenodo_answer_variants_and_the_content_url(tmp_path: Path):
    """Keys filename/filesize, a bare md5, and a links.self naming an internal file id (which does not download):
    the documented /files/<key>/content URL is used."""
    archive = actor_zip(1)
    with serving() as srv:
        publish(srv, [1])
        srv.routes["/api/records/1188976"] = json.dumps({"files": {"entries": {"x": {
            "filename": "Video_Speech_Actor_01.zip", "filesize": len(archive),
            "checksum": hashlib.md5(archive).hexdigest(),
            "links": {"self": "https://zenodo.org/api/records/1188976/files/4a0f-uuid"}}}}}).encode()
        download(config(tmp_path, srv, [1]))
        assert len(srv.requests_for("/api/records/1188976/files/Video_Speech_Actor_01.zip/content")) == 1
        assert extracted(tmp_path) == expected_layout([1])


def test_files_download_at_once_and_each_finished_file_is_one_line_off_a_terminal(tmp_path: Path, capsys):
    import threading
    import time

    actors = [1, 2, 3]
    active, peak, lock = [0], [0], threading.Lock()

    def slow() -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        with lock:
            active[0] -= 1

    with serving() as srv:
        paths = publish(srv, actors)
        for a in actors:
            srv.faults.before_body[paths[f"Video_Speech_Actor_{a:02d}.zip"]] = slow
        download(config(tmp_path, srv, actors, "download.workers=3"))
    assert peak[0] >= 2
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Video_Speech_Actor_")]
    assert len(lines) == 3 and all(re.search(r"MiB in \d+ s \([0-9.]+ MiB/s\)", ln) for ln in lines)


def test_mirror_replaces_scheme_and_host_and_keeps_its_prefix():
    client = HttpClient(retries=0, backoff=0, timeout=1, mirror="http://mirror.local:8000/zenodo/")
    assert client.url("https://zenodo.org/api/records/1?x=1") == "http://mirror.local:8000/zenodo/api/records/1?x=1"
    assert HttpClient(retries=0, backoff=0, timeout=1, mirror=None).url("https://a/b") == "https://a/b"
    with pytest.raises(ValueError, match="download.mirror='mirror.local'"):
        HttpClient(retries=0, backoff=0, timeout=1, mirror="mirror.local")


def test_other_extract_settings_make_the_recorded_files_unfinished(tmp_path: Path):
    actors = [1]
    with serving() as srv:
        publish(srv, actors)
        download(config(tmp_path, srv, actors))
        srv.log.clear()
        download(config(tmp_path, srv, actors, 'download.sources.videos.extract=[{match: "0?-01-*.mp4", to: '
                                               '"{parent}/{name}"}]'))
        assert len(srv.log) == 2  # the video record's listing and the one zip: the landmarks stay finished
        assert (tmp_path / "Actor_01" / f"{OTHER.format(a=1)}.mp4").is_file()


def test_on_a_terminal_one_bar_shows_bytes_and_rate():
    import io

    from cfnsr.download.progress import DownloadProgress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    with DownloadProgress(3 << 20, stream=term) as progress:
        progress.advance(1 << 20)
        progress.file_done("a.zip", 1 << 20, 1.0)  # no extra line on a terminal: the bar says it
    text = term.getvalue()
    assert "download" in text and re.search(r"1\.0/3\.1 MB", text) and "a.zip" not in text
