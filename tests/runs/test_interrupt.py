"""cfnsr.runs.interrupt: which signals end a job as interrupted, and what a repeated signal does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cfnsr.runs.interrupt import Interrupted, interrupt_handlers

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def test_a_signal_raises_interrupted_and_the_default_is_back_outside():
    raised = []
    with interrupt_handlers():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # let the handler run
        except Interrupted as exc:
            raised.append((exc.signal_name, exc.exit_code))
    assert raised == [("SIGTERM", 143)]
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)


def _run_child(code: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from cfnsr.runs.interrupt import Interrupted, interrupt_handlers
        with interrupt_handlers():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
            except Interrupted:
                {code}
                print("record written")
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_a_duplicate_sigterm_while_the_record_is_written_does_not_kill_the_job():
    """``timeout`` forwarding a SIGTERM that ``pkill`` also sent: before, the job died with its record "running"."""
    proc = _run_child("os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.2)")
    assert proc.returncode == 0 and "record written" in proc.stdout, proc.stderr


def test_another_signal_while_the_record_is_written_stops_the_process_the_hard_way():
    proc = _run_child("os.kill(os.getpid(), signal.SIGINT); time.sleep(0.5)")
    assert proc.returncode == -signal.SIGINT and "record written" not in proc.stdout
