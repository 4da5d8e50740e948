"""Progress of long loops: a rich bar on a terminal, plain text lines in a log file.

Under `nohup alignlab sft ... > train.log` stdout is not a terminal, and a live bar would print once,
at the end. There `Progress` writes plain lines instead, flushed as they are written:

    train: step 120/1000 (12%) | loss 1.2345  lr 2.00e-05 | 1.52 step/s | elapsed 1m19s | eta 9m38s

A line is written at the first update, whenever `every_s` seconds have passed since the last line
(30 s by default; the environment variable ALIGNLAB_PROGRESS_SECONDS changes it, 0 writes every
update), each time another tenth of the total is done, and at the end. So a short run still shows
about ten lines and a long one a line every half minute. Rate and ETA count only the work done
since this `Progress` started (a resumed run does not look faster than it is).

Use it as a context manager, or call `close()`::

    with Progress("score", total=len(pairs), unit="pair") as bar:
        for batch in batches:
            ...
            bar.advance(len(batch), info=f"accuracy {acc:.3f}")
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from alignlab.errors import ConfigError

DEFAULT_EVERY_S = 30.0
ENV_EVERY_S = "ALIGNLAB_PROGRESS_SECONDS"
_MILESTONES = 10  # a plain line at each further tenth of the total


def line_interval() -> float:
    """Seconds between plain lines: ALIGNLAB_PROGRESS_SECONDS, or 30."""
    raw = os.environ.get(ENV_EVERY_S)
    if raw is None or not raw.strip():
        return DEFAULT_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise ConfigError(f"{ENV_EVERY_S}={raw!r}: give the seconds between progress lines, a number >= 0")
    return value


def format_duration(seconds: float) -> str:
    """`42s`, `9m38s`, `3h05m`."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class Progress:
    """Progress of `total` units of work (steps, sequences, pairs) from `completed` on.

    On a terminal a rich bar; elsewhere plain lines (see the module docstring); nothing when
    `enabled` is false (e.g. on every process but the main one).
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        completed: int = 0,
        unit: str = "step",
        enabled: bool = True,
        stream: TextIO | None = None,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit = label, max(int(total), 0), unit
        self.completed = self._start = int(completed)
        self._stream = stream if stream is not None else sys.stdout
        self._every_s = line_interval() if every_s is None else every_s
        self._clock = clock
        self._t0 = self._last_line_t = clock()
        self._last_line_n: int | None = None
        self._info = ""
        self._bar: Any = None
        self._enabled = enabled
        isatty = getattr(self._stream, "isatty", None)
        if enabled and callable(isatty) and isatty():
            self._start_bar()

    # ---------------------------------------------------------------------------- updates

    def update(self, completed: int, info: str = "") -> None:
        """Set the units done so far; `info` is shown after them (e.g. "loss 1.2345  lr 2.00e-05")."""
        if not self._enabled:
            return
        self.completed, self._info = int(completed), info
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, info=info)
        elif self._line_due():
            self._write_line()

    def advance(self, n: int = 1, info: str = "") -> None:
        self.update(self.completed + n, info)

    def close(self) -> None:
        """Stop the bar; a plain-text run ends with a line for the last state if it has none yet."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self._enabled and self._last_line_n not in (None, self.completed):
            self._write_line()
        self._enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- plain lines

    def _line_due(self) -> bool:
        if self._last_line_n is None or self.completed >= self.total:
            return self._last_line_n != self.completed
        if self._clock() - self._last_line_t >= self._every_s:
            return True
        tenth = lambda n: n * _MILESTONES // max(self.total, 1)  # noqa: E731
        return tenth(self.completed) > tenth(self._last_line_n)

    def line(self) -> str:
        """The plain progress line for the current state."""
        elapsed = self._clock() - self._t0
        done = self.completed - self._start
        pct = 100 * self.completed // max(self.total, 1)
        parts = [f"{self.label}: {self.unit} {self.completed}/{self.total} ({pct}%)"]
        if self._info:
            parts.append(self._info)
        if done > 0 and elapsed > 0:
            rate = done / elapsed
            parts.append(f"{rate:.2f} {self.unit}/s" if rate >= 1 else f"{1 / rate:.2f} s/{self.unit}")
            parts.append(f"elapsed {format_duration(elapsed)}")
            if self.completed < self.total:
                parts.append(f"eta {format_duration((self.total - self.completed) / rate)}")
        else:
            parts.append(f"elapsed {format_duration(elapsed)}")
        return " | ".join(parts)

    def _write_line(self) -> None:
        self._stream.write(self.line() + "\n")
        self._stream.flush()  # a log file must show the line now, not when the buffer fills
        self._last_line_t, self._last_line_n = self._clock(), self.completed

    # ---------------------------------------------------------------------------- terminal bar

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), console=Console(file=self._stream),
        )
        self._task = self._bar.add_task(self.label, total=self.total, completed=self.completed, info="")
        self._bar.start()
