"""The process pool of the data tools (preprocessing, synthetic corpus): workers that die with the run.

Workers are not forked from the caller: OpenCV's thread pool, once used in the parent, deadlocks in forked children.
With the ``forkserver`` start method a fresh interpreter imports the ``preload`` modules once and forks the workers
from there (``spawn`` where there is no fork server).

A run killed with SIGKILL cannot shut its pool down, and its workers would live on (a worker blocked on the task
queue never sees the end of it, since it holds the queue's pipe itself). So each worker first asks the kernel to
SIGKILL it when its parent exits (``prctl(PR_SET_PDEATHSIG)``, Linux only). Under ``spawn`` the parent is the run
itself. Under the fork server the parent is the fork server, which exits when the write end of its "alive" pipe is
closed everywhere; but every process it forks inherits that end, so the workers would keep their own parent alive.
Each worker therefore closes its copy (it never starts processes of its own): the run's death then ends the fork
server, whose death ends the workers.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits. True if set (Linux), else False."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _release_forkserver_alive_fd() -> None:
    """Close this worker's copy of the fork server's "alive" pipe, so that the fork server exits with the run.

    Only a process forked by the fork server has it set (``multiprocessing.forkserver._serve_one``); a spawned
    worker has None there.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if server is None or fd is None:
        return
    try:
        os.close(fd)
    except OSError:
        pass
    server._forkserver_alive_fd = None


def _init_worker(owner: int, initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
    if die_with_parent():
        _release_forkserver_alive_fd()
        if not pid_alive(owner):
            # the run died between this worker's fork and the prctl: no signal will come any more
            os._exit(1)
    # One process per core: OpenCV's own thread pool (decoding, resizing, drawing) would only contend for them.
    import cv2

    cv2.setNumThreads(1)
    if initializer is not None:
        initializer(*initargs)


def pool_context() -> Any:
    """The multiprocessing context of the pools: ``forkserver`` where there is one, else ``spawn``."""
    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def _isolated(owner: int, fn: Callable[[Any], Any], arg: Any, conn: Any) -> None:
    _init_worker(owner, None, ())
    conn.send(fn(arg))
    conn.close()


def run_isolated(fn: Callable[[Any], Any], arg: Any, preload: Iterable[str] = ()) -> tuple[Any, int]:
    """``fn(arg)`` in a process of its own (set up like a pool worker): (its result, 0), or (None, exit code) when
    the process died before returning one (a negative code -N: killed by signal N, as ``Process.exitcode``).

    For the one job a pool was running when a worker died: run alone, a crash names exactly that job.
    """
    ctx = pool_context()
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload([__name__, *preload])
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_isolated, args=(os.getpid(), fn, arg, send), daemon=True)
    process.start()
    send.close()  # ours: only the child's copy stays open, so its death ends recv() with EOFError
    try:
        result = receive.recv()
    except EOFError:
        result = None
    process.join()
    code = process.exitcode if process.exitcode is not None else -1
    return (result, 0) if result is not None and code == 0 else (None, code or -1)


def exit_description(code: int) -> str:
    """A process exit code in words: "killed by SIGSEGV", "exit status 1"."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def process_pool(workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple[Any, ...] = (),
                 preload: Iterable[str] = ()) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` processes that die with the calling process.

    Each worker limits OpenCV to one thread, then runs initializer(*initargs) if given (module-level, picklable).
    preload: modules the fork server imports once before forking workers (the caller's module, heavy imports).
    An executor rather than ``mp.Pool``: a worker that dies (out of memory, a crash in a codec) surfaces as
    ``BrokenProcessPool`` instead of being respawned forever.
    """
    ctx = pool_context()
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload([__name__, *preload])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(os.getpid(), initializer, tuple(initargs)))
