"""One progress display per command: a live tqdm bar on a terminal, plain lines in a log.

Training, analysis and sweeps all report through :class:`Progress`, so they look the same:

- on a terminal, one tqdm bar with the rate, the time left and the latest metrics as its
  postfix (``epoch 1200/4000 [00:31<01:12, 38.5 epoch/s, test_accuracy=0.41, ...]``);
- when the stream is not a terminal (CI, ``nohup``, a log file), one plain line each time
  another ``line_fraction`` of the total is done or ``line_seconds`` have passed, and a last
  line when it closes: a log gets ~20 lines per command, never one per epoch;
- with ``enabled=False`` (``--quiet``), nothing.

Work done in other processes (the pipeline's workers, a Dask cluster) is reported by the parent
as results arrive, so there is still exactly one display.

Any loop reports the same way: a sweep counts runs with
``Progress(len(runs), "sweep", unit="run")`` and ``advance(metrics=...)`` after each, and a
family's training loop needs nothing but the ``progress(epoch, metrics)`` callback it is given
(:meth:`Progress.training_callback`).

Examples
--------
>>> import io
>>> log = io.StringIO()
>>> with Progress(4, "analyze run", unit="epoch", file=log) as bar:
...     for _ in range(4):
...         bar.advance()
>>> log.getvalue().splitlines()[-1].split(" [")[0]
'analyze run: 100% 4/4 epoch'
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any, Self

__all__ = ["Progress", "TrainingCallback"]

#: ``callback(epoch, metrics)``, called once per epoch by
#: :meth:`~epochstore.interface.ModelFamily.train`.
TrainingCallback = Callable[[int, Mapping[str, float]], None]

_LINE_FORMAT = (
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} {unit} "
    "[{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)
_LINE_FORMAT_NO_TOTAL = "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}{postfix}]"


def _format_value(value: float) -> str:
    return f"{value:.4g}"


class Progress:
    """A progress display for ``total`` units of work (a tqdm bar, plain lines, or nothing).

    Parameters
    ----------
    total
        Units of work (epochs, tasks, runs); ``None`` if unknown (no percentage, no time left).
    desc
        What is being done, e.g. ``"train runs/modadd/demo"``.
    unit
        Name of one unit, e.g. ``"epoch"`` or ``"run"``.
    enabled
        ``False`` shows nothing (``--quiet``).
    file
        The stream; default ``sys.stderr``. A terminal gets a live bar, anything else plain lines.
    initial
        Units already done when this display starts (they do not count towards the rate);
        ``None``: unknown until the first report (see :meth:`start`), e.g. a resumed run.
    line_fraction, line_seconds
        Without a terminal, a line is written each time another ``line_fraction`` of ``total``
        is done or ``line_seconds`` have passed since the last line, whichever comes first.

    See Also
    --------
    Progress.training_callback : the ``progress`` argument of ``ModelFamily.train``.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "epoch",
        enabled: bool = True,
        file: IO[str] | None = None,
        initial: int | None = 0,
        line_fraction: float = 0.05,
        line_seconds: float = 30.0,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.enabled = enabled
        self.file: IO[str] = sys.stderr if file is None else file
        self.line_fraction = line_fraction
        self.line_seconds = line_seconds
        self.n = 0
        self.metrics: dict[str, float] = {}
        self._initial: int | None = None
        self._bar: Any = None  # tqdm, opened by start()
        self._live = enabled and _is_terminal(self.file)
        self._started = self._last_line_time = time.monotonic()
        self._last_line_n = 0
        self._closed = False
        if initial is not None:
            self.start(initial)

    # --- updates --------------------------------------------------------------------------------

    def start(self, initial: int) -> None:
        """Begin counting from ``initial`` units already done (once; later calls are ignored)."""
        if self._initial is not None:
            return
        self._initial = self.n = self._last_line_n = initial
        self._started = self._last_line_time = time.monotonic()
        if self._live:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total,
                initial=initial,
                desc=self.desc,
                unit=self.unit,
                file=self.file,
                dynamic_ncols=True,
            )

    def advance(self, n: int = 1, metrics: Mapping[str, float] | None = None) -> None:
        """Count ``n`` more units done; ``metrics`` update the shown values (others are kept)."""
        self.advance_to(self.n + n, metrics)

    def advance_to(self, n: int, metrics: Mapping[str, float] | None = None) -> None:
        """Set the count of done units to ``n``; ``metrics`` update the shown values."""
        self.start(0)
        if metrics:
            self.metrics.update(metrics)
        delta, self.n = n - self.n, n
        if not self.enabled:
            return
        if self._live:
            if metrics:
                self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.update(delta)
        elif self._line_due():
            self._write_line()

    def set_metrics(self, metrics: Mapping[str, float]) -> None:
        """Update the shown metrics without advancing."""
        self.metrics.update(metrics)
        if self._live and self._bar is not None:
            self._bar.set_postfix_str(self._postfix())

    def write(self, message: str) -> None:
        """Print a message above the bar (or as a line of the log)."""
        if not self.enabled:
            return
        if self._live and self._bar is not None:
            self._bar.write(message, file=self.file)
        else:
            print(message, file=self.file, flush=True)

    def training_callback(self) -> TrainingCallback:
        """Return the ``progress`` callback of :meth:`~epochstore.interface.ModelFamily.train`.

        After epoch ``e`` is reported, ``e + 1`` epochs are done; the metrics of each call
        (the training loss every epoch, all saved metrics at checkpoints) replace the shown ones.
        """

        def report(epoch: int, metrics: Mapping[str, float]) -> None:
            self.start(epoch)  # the first epoch reported is where a resumed run starts
            self.advance_to(epoch + 1, metrics)

        return report

    def close(self) -> None:
        """End the display (a live bar stays on screen; a log gets its last line)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.close()
        elif self.enabled and not self._live and self.n != self._last_line_n:
            self._write_line()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ------------------------------------------------------------------------------

    def _postfix(self) -> str:
        return ", ".join(f"{k}={_format_value(v)}" for k, v in sorted(self.metrics.items()))

    def _line_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_line_time >= self.line_seconds:
            return True
        if self.total is None:
            return False
        step = max(1, round(self.total * self.line_fraction))
        return self.n // step > self._last_line_n // step or self.n >= self.total

    def _write_line(self) -> None:
        from tqdm import tqdm

        postfix = self._postfix()
        line = tqdm.format_meter(
            self.n,
            self.total,
            time.monotonic() - self._started,
            prefix=self.desc,
            unit=self.unit,
            postfix=postfix or None,
            bar_format=_LINE_FORMAT if self.total is not None else _LINE_FORMAT_NO_TOTAL,
            initial=self._initial or 0,
        )
        print(line, file=self.file, flush=True)
        self._last_line_n = self.n
        self._last_line_time = time.monotonic()


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
