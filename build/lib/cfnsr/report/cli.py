"""``python -m cfnsr.report <dir> [<dir> ...] [--out DIR] [--split]``: summarise runs from their metrics.json files."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cfnsr.report.build import ReportError, build_report
from cfnsr.report.collect import collect_runs
from cfnsr.report.markdown import format_markdown
from cfnsr.report.robustness import build_robustness, collect_robustness, format_robustness, write_robustness
from cfnsr.report.rows import fusion_order, model_name
from cfnsr.report.write import write_report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m cfnsr.report",
        description="Build the comparison table(s), paired tests and figures from the metrics.json files of runs.",
    )
    p.add_argument("paths", nargs="+", type=Path, help="run or (Hydra multi)run directories, searched recursively")
    p.add_argument("--out", type=Path, default=None, help="output directory (default: the first input directory)")
    p.add_argument(
        "--split",
        action="store_true",
        help="one table per (protocol, dataset, backbone) instead of refusing to mix them, plus a protocol-gap "
        "table where both protocols are present. Runs whose training recipes differ in other keys (epochs, "
        "optimiser, batch size, ...) are always put in separate, labelled tables, with or without --split",
    )
    p.add_argument("--robustness", nargs="+", type=Path, default=None, metavar="DIR",
                   help="also summarise the robustness.json files under these directories (written by "
                        "evaluate.py ... robustness=default): relative and effective robustness per fusion")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; 0 on success, 1 when no finished run was found, 2 on bad input (mixing, missing paths)."""
    args = parse_args(argv)
    try:
        runs, skipped = collect_runs(args.paths)
        report = build_report(runs, split=args.split, skipped=skipped)
    except (ReportError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = args.out
    if out is None:
        first = args.paths[0]
        out = first.parent if first.is_file() else first
    written = write_report(report, out)
    print(format_markdown(report))
    if args.robustness:
        try:
            rob_runs, rob_skipped = collect_robustness(args.robustness)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        blocks = build_robustness(rob_runs, order=fusion_order())
        text = format_robustness(blocks, name=model_name)
        for path, why in rob_skipped:
            text += f"\n- skipped {path}: {why}"
        print(text)
        if blocks:
            written.update(write_robustness(blocks, out, name=model_name))
        (out / "robustness.md").write_text(text + "\n")
        written["robustness_md"] = out / "robustness.md"
    if report.recipe_hint:
        print(f"note: {report.recipe_hint}", file=sys.stderr)
    print(f"wrote {len(written)} file(s) to {out}: {', '.join(p.name for p in written.values())}", file=sys.stderr)
    return 0 if report.groups else 1
