"""Human-readable summaries of run records for the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pct(x: float | None) -> str:
    return "    n/a" if x is None else f"{100 * x:7.2f}"


SATURATED = 0.999  # a best validation accuracy at or above this leaves nothing for the selection to tell apart


def selection_warnings(record: dict[str, Any]) -> list[str]:
    """Lines warning that the validation set could not tell epochs apart: saturated, or the best value reached by
    several epochs (the tie rule then chose)."""
    best, ties, monitor = record.get("val_best"), record.get("val_ties") or 0, record.get("val_monitor")
    out = []
    if best is not None and monitor and monitor.endswith(("war", "uar", "f1")) and best >= SATURATED:
        out.append(f"   WARNING: validation saturated ({monitor} = {100 * best:.2f} %): it cannot rank the epochs "
                   f"that reach it; the selected epoch is the first to reach it or won a tie on "
                   f"{record.get('selection_ties')}. Use a harder corpus or fewer epochs to compare selection rules.")
    elif ties:
        out.append(f"   note: {ties} later epoch(s) equalled the best {monitor}; chosen by {record.get('selection_ties')}")
    return out


def format_run_summary(record: dict[str, Any], run_dir: str | Path) -> str:
    """Test metrics of a finished run, labelled with the protocol, and where its files went."""
    run_dir = Path(run_dir)
    lines = [
        "",
        f"== {record['fusion']} | backbone={record['backbone']} | data={record['dataset']} | fold {record['fold']} "
        f"(test actors {record['test_actors']}) | seed {record['seed']} | protocol={record['protocol']}",
        f"   params {record['params']:,}" + (f" | {record['gflops']:.3f} GFLOPs/clip" if record.get("gflops") else ""),
        f"   {'':44s}    WAR     UAR      F1     n",
    ]
    rows = (("test", f"test @ {record['selection']}"), ("test_last", "test @ last epoch"))
    for key, label in rows:
        res = record.get(key)
        if res:
            lines.append(f"   {label:44s} {_pct(res['war'])} {_pct(res['uar'])} {_pct(res['f1'])} {res['n']:5d}")
    if record.get("status") == "debug":
        lines.insert(2, f"   DEBUG RUN ({', '.join(record.get('debug') or [])}): a check of the code, not a result; "
                        f"reports skip it")
        metrics = record.get("final_metrics") or {}
        if metrics:
            lines.append("   last logged: " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    if record.get("best_epoch") is not None:
        # 1-based for people; the file name keeps the 0-based epoch Lightning counts (best-e001 = epoch 2)
        lines.append(f"   selected epoch: {record['best_epoch'] + 1} of {record.get('epochs')}"
                     + (f" (ties on {record['val_monitor']}: {record['selection_ties']})"
                        if record.get("selection_ties") else ""))
        lines += selection_warnings(record)
    by_type = (record.get("test") or {}).get("by_interaction")
    if by_type:
        lines.append("   test accuracy by interaction type (docs/diagnostics.md): " + "  ".join(
            f"{k} {_pct(v.get('acc')).strip()}" for k, v in by_type.items()))
    if record.get("last_ckpt"):
        lines.append(f"   checkpoints: {record.get('best_ckpt')} (selected), {record.get('last_ckpt')} (last)")
    elif record.get("best_ckpt"):
        lines.append(f"   checkpoint:  {record.get('best_ckpt')}")
    else:
        lines.append("   checkpoints: none written")
    files = (("metrics:", "metrics.json"), ("per-epoch:", "csv/metrics.csv"), ("config:", "config.yaml"),
             ("test:", "test.json"), ("robustness:", "robustness.json"), ("", "robustness.csv"),
             ("", "robustness.png"))  # the last four: evaluate.py's outputs
    lines += [f"   {label:12s} {run_dir / name}" for label, name in files if (run_dir / name).exists()]
    lines.append("")
    return "\n".join(lines)
