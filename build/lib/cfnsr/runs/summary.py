"""Human-readable summaries of run records for the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pct(x: float | None) -> str:
    return "    n/a" if x is None else f"{100 * x:7.2f}"


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
        lines.append(f"   selected epoch: {record['best_epoch'] + 1} of {record.get('epochs')}")
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
