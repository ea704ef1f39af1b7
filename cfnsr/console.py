"""What a run prints, and its copy in ``<run>/train.log``.

* ``quiet_lightning``: drops Lightning's advertisements and known third-party deprecation noise, shows the
  hardware lines once, and lets Lightning's log records reach Hydra's handlers (console and ``train.log``).
* ``console_to_log``: while a job runs, whatever it prints (run summary, preprocessing report, warnings,
  tracebacks) also goes to the log file Hydra opened for the job, so ``train.log`` holds the console output.
* ``print_config_tree``: the resolved config as a tree, on the console and saved as text next to ``config.yaml``.
* ``TerminalProgressBar``: Rich's bars on a terminal only (a pipe or a log file gets no frozen copies of them),
  numbering epochs from 1 as every other message does.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import yaml
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import Callback, RichProgressBar

# Lightning's hardware report is printed by every Trainer (a run builds two); once per job is enough.
_ONCE_PREFIXES = ("GPU available:", "TPU available:", "HPU available:", "You have turned on `Trainer(detect_anomaly")
_DROPPED_PREFIXES = ("💡 Tip:",)  # "try installing litlogger/litmodels": advertisements, not information
# Warnings that say nothing about this project's code or data (library internals, environment hints).
_NOISE = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated",  # torch's pytree deprecation, raised inside Lightning
    r"The `srun` command is available on your system but is not used",  # any machine with SLURM installed
    r"You requested to overfit but enabled \w+ dataloader shuffling",  # debug=overfit: the point of the mode
)
_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning")
_RANK_ZERO_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                      "lightning_utilities.core.rank_zero")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The config tree lists these groups first, in the order a reader follows a run; the rest follow as composed.
PRINT_ORDER = ("data", "preprocess", "folds", "protocol", "backbone", "fusion", "init", "augment", "optimizer",
               "trainer", "logger", "paths")


class _LightningNoiseFilter(logging.Filter):
    """Drops advertisements; lets the hardware lines through once per job (``reset`` starts a job)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def reset(self) -> None:
        self.seen.clear()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg.startswith(_DROPPED_PREFIXES):
            return False
        if msg.startswith(_ONCE_PREFIXES):
            if msg in self.seen:
                return False
            self.seen.add(msg)
        return True


_FILTER = _LightningNoiseFilter()


def quiet_lightning() -> None:
    """Silence Lightning's tips and known deprecation noise; route Lightning's records through the root logger.

    Lightning gives its loggers their own stderr handler when it is imported before logging is configured (always,
    under Hydra), which keeps its messages out of the job's log file; once the root logger has handlers (Hydra's
    console and file handlers), that private handler is removed and the records propagate. Idempotent.
    """
    for name in _RANK_ZERO_LOGGERS:
        lg = logging.getLogger(name)
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)
    for pattern in _NOISE:
        warnings.filterwarnings("ignore", message=pattern)
    if logging.getLogger().handlers:
        for name in _LIGHTNING_LOGGERS:
            lg = logging.getLogger(name)
            for h in list(lg.handlers):
                if type(h) is logging.StreamHandler:  # Lightning's own; a FileHandler is a user's choice
                    lg.removeHandler(h)
            lg.propagate = True


def log_files() -> list[logging.FileHandler]:
    """The file handlers of the root logger: Hydra's ``<output_dir>/<job name>.log`` under ``hydra.main``."""
    return [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


class _Tee:
    """A text stream that writes through to ``stream`` and copies each complete line into ``handlers``.

    Progress redraws (``\\r``) keep only their final state and colour codes are stripped, so the file reads as
    plain text. Everything else (``isatty``, ``fileno``, ``encoding``) is the wrapped stream's.
    """

    def __init__(self, stream: TextIO, handlers: Sequence[logging.Handler], name: str) -> None:
        self.terminal = stream
        self._handlers = list(handlers)
        self._name = name
        self._buf = ""
        self._emitting = False

    def write(self, s: str) -> int:
        self.terminal.write(s)
        if self._emitting:
            # written while a handler handles a line (logging's own error report of a failing handler): to the
            # terminal only; copying it to the handlers fed the failing file its own errors until RecursionError
            return len(s)
        self._buf += s
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._emit(line)
        return len(s)

    def _emit(self, line: str) -> None:
        line = _ANSI.sub("", line.rsplit("\r", 1)[-1]).rstrip()
        if not line:
            return
        record = logging.LogRecord(self._name, logging.INFO, __file__, 0, line, None, None)
        self._emitting = True
        try:
            for h in self._handlers:
                if record.levelno >= h.level:
                    h.handle(record)
        finally:
            self._emitting = False

    def flush(self) -> None:
        self.terminal.flush()

    def close_line(self) -> None:
        """Copy a last line that never got its newline."""
        if self._buf:
            self._emit(self._buf)
            self._buf = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.terminal, name)


def terminal_stream() -> TextIO:
    """The real standard output, also while ``console_to_log`` copies it into the log file."""
    return getattr(sys.stdout, "terminal", sys.stdout)


@contextmanager
def console_to_log(handlers: Sequence[logging.Handler] | None = None) -> Iterator[None]:
    """Copy stdout, stderr and warnings into ``handlers`` (default: the root logger's file handlers) meanwhile.

    An exception leaving the block is written to the files with its traceback before it propagates, so a
    failed job's log says why. Without file handlers (no Hydra job logging) this changes nothing but the noise
    filter's per-job state.
    """
    _FILTER.reset()
    handlers = log_files() if handlers is None else list(handlers)
    if not handlers:
        yield
        return
    out, err = sys.stdout, sys.stderr
    failing = _FailingFiles(err)
    for h in handlers:
        failing.watch(h)
    sys.stdout, sys.stderr = _Tee(out, handlers, "stdout"), _Tee(err, handlers, "stderr")
    logging.captureWarnings(True)  # warnings become records of "py.warnings": console and file alike
    try:
        yield
    except BaseException as exc:
        record = logging.LogRecord("cfnsr", logging.ERROR, __file__, 0, "job failed: %s", (exc,), None)
        record.exc_text = "".join(traceback.format_exception(exc)).rstrip()
        for h in handlers:
            h.handle(record)
        raise
    finally:
        for tee in (sys.stdout, sys.stderr):
            if isinstance(tee, _Tee):
                tee.close_line()
        logging.captureWarnings(False)
        sys.stdout, sys.stderr = out, err
        for h in handlers:
            try:
                h.flush()
            except OSError:
                pass  # already reported by _FailingFiles
        failing.restore()


class _FailingFiles:
    """Reports a log file that cannot be written (a full disk) in one line on the console, once per file, instead
    of logging's traceback per record (thousands of lines burying the run's own error)."""

    def __init__(self, console: TextIO) -> None:
        self.console = console
        self.watched: dict[logging.Handler, Any] = {}
        self.reported: set[logging.Handler] = set()

    def watch(self, handler: logging.Handler) -> None:
        self.watched[handler] = handler.__dict__.get("handleError")
        handler.handleError = lambda record, h=handler: self._failed(h)  # type: ignore[method-assign]

    def _failed(self, handler: logging.Handler) -> None:
        exc = sys.exc_info()[1]
        if handler in self.reported:
            return
        self.reported.add(handler)
        path = getattr(handler, "baseFilename", None)
        what = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and path is not None:
            import errno
            import shutil

            try:
                usage = shutil.disk_usage(Path(path).parent)
                disk = f" ({usage.free / 2 ** 20:.1f} MiB free of {usage.total / 2 ** 20:.1f} MiB on its disk)"
            except OSError:
                disk = ""
            what = f"{errno.errorcode.get(exc.errno or 0, 'OSError')}: {exc.strerror or exc}{disk}"
        try:
            self.console.write(f"cfnsr: cannot write the log file {path}: {what}; the console output is no longer "
                               f"copied there\n")
            self.console.flush()
        except (OSError, ValueError):
            pass

    def restore(self) -> None:
        for handler, own in self.watched.items():
            if own is None:
                handler.__dict__.pop("handleError", None)
            else:
                handler.handleError = own  # type: ignore[method-assign]


class _TreeDumper(yaml.SafeDumper):
    """Block style for mappings (one key per line), flow style for lists of scalars ("layers: [3, 4, 6, 3]")."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flat = all(not isinstance(x, (dict, list)) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)


_TreeDumper.add_representer(list, _represent_list)


def config_tree(cfg: DictConfig, order: Sequence[str] = PRINT_ORDER, resolve: bool = True) -> Any:
    """A ``rich.tree.Tree`` of ``cfg``: top-level values first, then one branch per group (YAML)."""
    import rich.syntax
    import rich.tree

    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    plain = OmegaConf.to_container(cfg, resolve=resolve)
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order]
    for key in sorted(keys, key=lambda k: isinstance(plain[k], dict)):  # stable: scalars first, then groups
        value = plain[key]
        if isinstance(value, dict):
            branch = tree.add(str(key), style="dim", guide_style="dim")
            text = yaml.dump(value, Dumper=_TreeDumper, default_flow_style=False, sort_keys=False, width=100).rstrip()
            branch.add(rich.syntax.Syntax(text, "yaml", background_color="default", word_wrap=True))  # never crop a value
        else:
            tree.add(f"{key}: {json.dumps(value) if value is None or isinstance(value, bool) else value}")
    return tree


def print_config_tree(cfg: DictConfig, save_to: str | Path | None = None, resolve: bool = True) -> None:
    """Print the config tree to stdout and, with ``save_to``, write it there as plain text."""
    from rich.console import Console

    tree = config_tree(cfg, resolve=resolve)
    Console(file=sys.stdout).print(tree)  # sys.stdout at call time: console_to_log's copy reaches train.log
    if save_to is not None:
        plain = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False)
        plain.print(tree)
        text = "\n".join(line.rstrip() for line in plain.file.getvalue().splitlines())
        Path(save_to).write_text(text + "\n", encoding="utf-8")


class TerminalProgressBar(RichProgressBar):
    """Rich's bars on a terminal only; the training bar says "Epoch 1/12" for the first of 12 epochs.

    Bars are drawn on the real stdout (not through ``console_to_log``), so their redraws stay out of the log.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or terminal_stream()
        super().__init__(console_kwargs={"file": self.stream})
        if not _isatty(self.stream):
            # A pipe or file would get each finished bar as a frozen line: nothing a reader needs.
            self.disable()

    def _get_train_description(self, current_epoch: int) -> str:
        text = f"Epoch {current_epoch + 1}"
        if self.trainer.max_epochs is not None:
            text += f"/{self.trainer.max_epochs}"
        return f"{text:{len(self.validation_description)}}"


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class EpochLines(Callback):
    """Off a terminal (a log file, a SLURM job's output): one line per finished epoch in place of the bars, e.g.
    ``epoch 3/12: train/loss 1.2034, val/war 0.4500 (41 s)``, so a reader of the log sees the run advance."""

    def __init__(self) -> None:
        self._started = 0.0

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        import time

        self._started = time.monotonic()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:  # after the epoch's validation
        import time

        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        values = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(values.items()))
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        logging.getLogger("cfnsr").info(f"epoch {trainer.current_epoch + 1}{total}: {shown or 'no metrics'} "
                                        f"({time.monotonic() - self._started:.0f} s)")


def progress_bars(trainer_cfg: DictConfig, stream: TextIO | None = None) -> list[Any]:
    """Progress for a Trainer built from ``trainer_cfg``: bars on a terminal, else one line per epoch (none when
    the config disables bars)."""
    if not trainer_cfg.get("enable_progress_bar", True):
        return []
    bar = TerminalProgressBar(stream)
    return [bar] if _isatty(bar.stream) else [bar, EpochLines()]
