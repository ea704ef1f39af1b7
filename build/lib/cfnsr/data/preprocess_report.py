"""The preprocessing report (``<cache>/preprocess_report.json``) and its summary for the terminal."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from cfnsr.data import cache
from cfnsr.data.settings import PreprocessSettings

CORRUPT_FIELDS = ("corrupt_packets", "corrupt_video_packets", "corrupt_audio_packets")

# What one run did or measured, as opposed to the state of the corpus and cache: left out when deciding whether
# the report on disk is still right (they describe the run that last wrote it).
_RUN_FIELDS = ("workers", "verify", "processed", "reused", "rebuilt", "not_retried", "reidentified", "elapsed_s",
               "clip_seconds_mean", "clip_cpu_seconds_mean")
_RUN_COUNTS = ("processed", "reused", "rebuilt", "not_retried", "reidentified")


def stable_part(report: dict[str, Any]) -> Any:
    """The report without what describes the run that wrote it: equal parts mean the report on disk is still right."""
    out = {k: v for k, v in report.items() if k not in _RUN_FIELDS}
    if isinstance(out.get("counts"), dict):
        out["counts"] = {k: v for k, v in out["counts"].items() if k not in _RUN_COUNTS}
    return json.loads(json.dumps(out))  # compare as it reads back from disk (tuples -> lists, ...)


def build_report(root: Path, cache_dir: Path, settings: PreprocessSettings, n_found: int, processed: list[str],
                  reused: list[str], skipped: list[dict[str, Any]], not_a_clip: list[dict[str, str]],
                  rebuilt: list[dict[str, str]], not_retried: list[str], facts: dict[str, dict[str, Any]],
                  seconds: list[tuple[float, float]], elapsed: float, workers: int, verify: str) -> dict[str, Any]:
    """``preprocess_report.json``: settings, counts, and every processed, reused, rebuilt, skipped clip and why."""
    skipped = sorted(skipped, key=lambda s: s["file"])
    not_a_clip = sorted(not_a_clip, key=lambda s: s["file"])
    rebuilt = sorted(rebuilt, key=lambda s: s["stem"])
    usable = sorted(facts)
    detector = [s for s in usable if facts[s]["face_source"] == "detector"]
    center = [s for s in usable if facts[s]["face_source"] == "center"]
    mismatch = [{"file": facts[s]["landmark_csv_rejected"], "kind": "landmarks-mismatch", "clip": facts[s]["source"],
                 "reason": facts[s]["landmarks_mismatch"],
                 "action": f"cropped with the face detector instead (face_source={facts[s]['face_source']}, "
                           f"landmark_mismatch=detector)"}
                for s in usable if facts[s]["landmarks_mismatch"]]
    corrupt = [{"stem": s, "file": facts[s]["source"], **{k: facts[s][k] for k in CORRUPT_FIELDS}}
               for s in usable if facts[s]["corrupt_packets"] > 0]
    # short_audio=pad: clips whose audio was zero-padded to the window, never silently
    padded = [{"stem": s, "file": facts[s]["source"], "seconds": facts[s].get("audio_padded_seconds", 0.0)}
              for s in usable if facts[s].get("audio_padded_seconds", 0.0) > 0]
    return {
        "root": str(root), "cache_dir": str(cache_dir), "settings": settings.to_dict(),
        "settings_hash": settings.hash, "cache_format": cache.CACHE_FORMAT, "workers": workers, "verify": verify,
        "counts": {
            "mp4_found": n_found, "usable": len(usable), "processed": len(processed),
            "reused": len(reused), "rebuilt": len(rebuilt), "skipped": len(skipped),
            "not_retried": len(not_retried), "not_a_clip": len(not_a_clip), "fallback_detector": len(detector),
            "center_crop": len(center), "landmarks_mismatch": len(mismatch), "corrupt_packets": len(corrupt),
            "skipped_by_kind": dict(sorted(Counter(s["kind"] for s in skipped).items())),
            # only when there are any: a cache built before short_audio existed keeps its report unchanged, so a
            # re-run on it writes nothing (read-only caches)
            **({"audio_padded": len(padded)} if padded else {}),
        },
        "processed": processed, "reused": reused, "rebuilt": rebuilt, "skipped": skipped,
        "not_retried": not_retried, "not_a_clip": not_a_clip,
        "fallback_detector": detector, "center_crop": center, "landmarks_mismatch": mismatch,
        "corrupt_packets": corrupt, **({"audio_padded": padded} if padded else {}),
        "elapsed_s": round(elapsed, 3),
        # per processed clip, inside its worker: wall time and CPU time (all threads of the worker process)
        "clip_seconds_mean": round(float(np.mean([w for w, _ in seconds])), 4) if seconds else None,
        "clip_cpu_seconds_mean": round(float(np.mean([c for _, c in seconds])), 4) if seconds else None,
    }


def format_report(report: dict[str, Any]) -> str:
    """A few lines for the terminal: totals, skips grouped by kind, the first skipped files, fallbacks, repairs."""
    c = report["counts"]
    lines = [f"preprocess: {c['usable']} usable clip(s) in {report['cache_dir']} ({c['processed']} new, "
             f"{c['reused']} already cached), {c['skipped']} skipped of {c['mp4_found']} video(s), "
             f"{report['elapsed_s']:.1f} s"]
    if c.get("rebuilt"):
        lines.append(f"  rebuilt {c['rebuilt']} broken cache entr{'y' if c['rebuilt'] == 1 else 'ies'}:")
        for r in report["rebuilt"][:10]:
            lines.append(f"    {r['stem']}: {r['reason']}")
    if c["skipped_by_kind"]:
        lines.append("  skipped: " + ", ".join(f"{n} {kind}" for kind, n in c["skipped_by_kind"].items()))
        problems = [s for s in report["skipped"] if s["kind"] not in ("video-only", "audio-only", "song")]
        for s in problems[:10]:
            lines.append(f"    {s['reason']}")  # every reason starts with the file name
        if len(problems) > 10:
            lines.append(f"    ... {len(problems) - 10} more in preprocess_report.json")
    if c.get("reidentified"):
        lines.append(f"  {c['reidentified']} entr{'y' if c['reidentified'] == 1 else 'ies'} re-identified: same "
                     f"source content, new size/mtime or no recorded identity (kept, not rebuilt)")
    if c.get("duplicates"):
        lines.append(f"  {c['duplicates']} group(s) of clips with identical content (see duplicates in "
                     f"preprocess_report.json): "
                     + "; ".join(f"{d['kind']}: {', '.join(d['clips'])}" for d in report["duplicates"][:3]))
    if c.get("not_retried"):
        lines.append(f"  {c['not_retried']} clip(s) that failed before were not retried (their files did not "
                     f"change; preprocess.retry_failed=true retries them)")
    if c.get("not_a_clip"):
        lines.append(f"  {c['not_a_clip']} file(s) in the corpus folders are not clips: "
                     + ", ".join(s["file"] for s in report["not_a_clip"][:5])
                     + (" ..." if c["not_a_clip"] > 5 else ""))
    if c.get("landmarks_mismatch"):
        lines.append(f"  {c['landmarks_mismatch']} landmark CSV(s) do not cover their clip (face detector used):")
        for m in report["landmarks_mismatch"][:5]:
            lines.append(f"    {m['reason']}")
    if c["fallback_detector"] or c["center_crop"]:
        line = (f"  no usable landmark CSV: {c['fallback_detector']} clip(s) cropped with the face detector, "
                f"{c['center_crop']} centre-cropped (no face found)")
        if report["center_crop"]:
            line += ": " + ", ".join(report["center_crop"][:5]) + (" ..." if c["center_crop"] > 5 else "")
        lines.append(line)
    if c.get("corrupt_packets"):
        lines.append(f"  {c['corrupt_packets']} clip(s) had corrupt packets (concealed by the decoder): "
                     + ", ".join(x["stem"] for x in report["corrupt_packets"][:5])
                     + (" ..." if c["corrupt_packets"] > 5 else ""))
    if c.get("audio_padded"):
        lines.append(f"  {c['audio_padded']} clip(s) had less audio than the window and were zero-padded "
                     f"(short_audio=pad; audio_padded_seconds in their meta.json): "
                     + ", ".join(x["stem"] for x in report["audio_padded"][:5])
                     + (" ..." if c["audio_padded"] > 5 else ""))
    return "\n".join(lines)
