"""Command-line plumbing shared by the LRA scripts and the examples.

- :func:`run` calls a script's ``main`` and turns a :class:`UserError` (a mistake in the flags,
  the config or the data that the user fixes) into one line ``error: ...`` on stderr and exit
  code 2, like argparse's own errors; ``--debug`` or ``SEQLAYERS_DEBUG=1`` shows the traceback.
  An interrupt (Ctrl-C) ends with ``interrupted`` and exit code 130.
- :func:`user_errors` marks the steps whose exceptions are the user's to fix (reading the
  config, finding the data), so a bug elsewhere still shows its traceback.
- :func:`choose_threads` picks torch's CPU thread count: ``--threads``, else ``OMP_NUM_THREADS``
  when set, else the script's own setting, else ``min(physical cores, 4)``.
- :class:`Progress` shows progress with a rate and an estimate of the time left: a tqdm bar on
  a terminal, plain periodic lines otherwise (tqdm missing, output to a file or a pipe).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, TextIO

DEBUG_ENV = "SEQLAYERS_DEBUG"
PROGRESS_EVERY_ENV = "SEQLAYERS_PROGRESS_EVERY"   # seconds between plain progress lines
MAX_DEFAULT_THREADS = 4


class UserError(Exception):
    """A mistake the user fixes (flags, config, data files): reported as one line, exit code 2."""


@contextlib.contextmanager
def user_errors(*kinds: type[BaseException]) -> Iterator[None]:
    """Re-raise ``kinds`` (default: the errors the config and data readers raise for bad input)
    as :class:`UserError`, keeping the message."""
    kinds = kinds or (KeyError, ValueError, TypeError, FileNotFoundError, NotADirectoryError)
    try:
        yield
    except kinds as err:
        # str(KeyError("x")) quotes its message; the message itself reads better
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        raise UserError(message) from err


def debug_requested(argv: list[str] | None = None) -> bool:
    """``--debug`` among the arguments, or ``SEQLAYERS_DEBUG`` set to a non-empty value other than 0."""
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def run(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> None:
    """Call ``main(argv)`` as a script's entry point (see the module docstring for the exits)."""
    debug = debug_requested(argv)
    try:
        main(argv)
    except UserError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        print(f"(run with --debug or {DEBUG_ENV}=1 for the traceback)", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def add_common_flags(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    """``--threads N`` (when ``threads``) and ``--debug`` on ``parser``."""
    if threads:
        parser.add_argument("--threads", type=int, default=None, metavar="N",
                            help="torch CPU threads (default: $OMP_NUM_THREADS if set, else the script's "
                                 f"own choice, printed at the start, else min(physical cores, {MAX_DEFAULT_THREADS}))")
    parser.add_argument("--debug", action="store_true",
                        help=f"show Python tracebacks for user errors (also: {DEBUG_ENV}=1)")


def physical_cores() -> int:
    """Physical cores this process may run on (hyperthreads counted once); ``os.cpu_count()``
    where Linux's topology files are not readable."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology.joinpath("physical_package_id").read_text().strip(),
                       topology.joinpath("core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return max(1, len(cores))


def choose_threads(requested: int | None, configured: int = 0, cap: int = MAX_DEFAULT_THREADS,
                   configured_why: str = "the configuration") -> tuple[int, str]:
    """torch's CPU thread count for this run and the reason, highest precedence first:
    ``requested`` (``--threads``), ``OMP_NUM_THREADS``, ``configured`` (the script's or config's
    own setting, explained by ``configured_why``; 0: none), ``min(physical cores, cap)``."""
    if requested is not None:
        if requested < 1:
            raise UserError(f"--threads must be >= 1, got {requested}")
        return requested, "--threads"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    if configured:
        return configured, configured_why
    return min(physical_cores(), cap), f"min(physical cores, {cap})"


def set_threads(requested: int | None, configured: int = 0, cap: int = MAX_DEFAULT_THREADS,
                configured_why: str = "the configuration") -> str:
    """Apply :func:`choose_threads` to torch; return a line saying how many and why."""
    import torch

    n, why = choose_threads(requested, configured, cap, configured_why)
    torch.set_num_threads(n)
    return f"{n} thread{'s' if n > 1 else ''} ({why}; --threads N to change)"


def duration(seconds: float) -> str:
    """``75.0`` -> ``"1m15s"``; ``4000`` -> ``"1h06m"``; ``9.4`` -> ``"9s"``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Progress over ``total`` units with a rate and an estimate of the time left.

    On a terminal with tqdm installed: a tqdm bar on ``stream`` (stderr). Otherwise one plain
    line at most every ``every`` seconds (default 10, or ``$SEQLAYERS_PROGRESS_EVERY``), e.g.
    ``train: 120/1000 steps (12%), 3.4 steps/s, about 4m18s left``, and a last line on
    :meth:`close`. :meth:`write` prints a message without breaking the bar.
    """

    def __init__(self, total: int, desc: str, unit: str = "step", initial: int = 0, enabled: bool = True,
                 every: float | None = None, stream: TextIO | None = None) -> None:
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.count = self.start_count = initial
        self.stream = stream or sys.stderr
        self.every = float(os.environ.get(PROGRESS_EVERY_ENV, 10.0)) if every is None else every
        self.start = self.last = time.monotonic()
        self.postfix = ""
        self.bar = self._tqdm() if enabled else None

    def _tqdm(self):
        """A tqdm bar when tqdm is installed and ``stream`` is a terminal, else ``None``."""
        if not (hasattr(self.stream, "isatty") and self.stream.isatty()):
            return None
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(total=self.total, initial=self.count, desc=self.desc, unit=self.unit, file=self.stream,
                    dynamic_ncols=True)

    def update(self, n: int = 1, **postfix) -> None:
        """Count ``n`` more units; ``postfix`` (e.g. ``loss=0.52``) is shown beside the rate."""
        self.count += n
        if postfix:
            self.postfix = "  " + "  ".join(f"{k} {v}" for k, v in postfix.items())
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            return
        now = time.monotonic()
        if now - self.last >= self.every and self.count < self.total:
            self.last = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float) -> str:
        """The plain progress line at time ``now``."""
        elapsed = max(now - self.start, 1e-9)
        rate = (self.count - self.start_count) / elapsed
        percent = 100.0 * self.count / max(self.total, 1)
        left = f", about {duration((self.total - self.count) / rate)} left" if rate > 0 else ""
        return (f"{self.desc}: {self.count}/{self.total} {self.unit}s ({percent:.0f}%), "
                f"{rate:.3g} {self.unit}s/s{left}{self.postfix}")

    def write(self, message: str) -> None:
        """Print ``message`` on stdout (above the bar, if any)."""
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        """Finish the bar, or print the final plain line (count, time taken, rate)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
            return
        elapsed = time.monotonic() - self.start
        rate = (self.count - self.start_count) / max(elapsed, 1e-9)
        print(f"{self.desc}: {self.count}/{self.total} {self.unit}s in {duration(elapsed)} ({rate:.3g} {self.unit}s/s)",
              file=self.stream, flush=True)
