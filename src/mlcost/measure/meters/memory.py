"""Peak resident set size (RSS) of this process on the CPU.

``resource.getrusage().ru_maxrss`` is the peak over the whole process lifetime, so it cannot report the
peak of a window by itself. The meter combines two sources since ``reset()``:

* a light background thread that samples the current RSS (psutil) every ``interval_s`` (5 ms default);
* ``ru_maxrss``: if it rose after ``reset()``, the lifetime peak was reached inside the window, so the
  window's peak is exactly that value — this catches spikes shorter than the sampling interval.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import weakref

import psutil

from mlcost.measure.meters.base import MemoryReading

# ru_maxrss is in KiB on Linux and in bytes on macOS.
_MAXRSS_UNIT_BYTES = 1 if sys.platform == "darwin" else 1024
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _ru_maxrss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * _MAXRSS_UNIT_BYTES


def _sampler_loop(meter_ref: weakref.ref[RssMemoryMeter], stop: threading.Event, interval_s: float) -> None:
    """Sample until stopped or until the meter is garbage-collected (the thread holds no strong ref)."""
    while not stop.wait(interval_s):
        meter = meter_ref()
        if meter is None:
            return
        try:
            meter._sample()
        except psutil.Error:  # pragma: no cover - the process is going away
            return
        del meter


class RssMemoryMeter:
    """A :class:`~mlcost.measure.meters.base.MemoryMeter` for peak RSS (Units: bytes).

    ``reset()`` starts the sampler (if not running) and records the baseline; ``read()`` returns the peak
    since the last reset; ``close()`` stops the sampler (also usable as a context manager).

    Args:
        interval_s: sampling period of the background thread; None for no thread (peak then comes from
            ``ru_maxrss`` and from the samples taken at ``reset()``/``read()``). Units: s.
    """

    name = "rss"

    def __init__(self, interval_s: float | None = 0.005) -> None:
        self.interval_s = interval_s
        self._process = psutil.Process()
        self._statm_fd: int | None = None
        self._close_fd: weakref.finalize | None = None
        try:
            self._statm_fd = os.open("/proc/self/statm", os.O_RDONLY)
            self._close_fd = weakref.finalize(self, os.close, self._statm_fd)  # closed once: here or on GC
        except OSError:
            self._statm_fd = None
        self._lock = threading.Lock()
        self._peak_bytes = 0
        self._baseline_bytes = 0
        self._maxrss_at_reset = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reset()

    def _rss(self) -> int:
        if self._statm_fd is not None:  # Linux fast path: ~10x cheaper than psutil
            try:
                return int(os.pread(self._statm_fd, 128, 0).split()[1]) * _PAGE_BYTES
            except (OSError, ValueError, IndexError):
                self._statm_fd = None
        return int(self._process.memory_info().rss)

    def _sample(self) -> None:
        rss = self._rss()
        with self._lock:
            if rss > self._peak_bytes:
                self._peak_bytes = rss

    @property
    def baseline_bytes(self) -> int:
        """RSS at the last ``reset()``. Units: bytes."""
        return self._baseline_bytes

    def reset(self) -> None:
        rss = self._rss()
        with self._lock:
            self._baseline_bytes = rss
            self._peak_bytes = rss
            self._maxrss_at_reset = _ru_maxrss_bytes()
        if self.interval_s is not None and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=_sampler_loop,
                args=(weakref.ref(self), self._stop, self.interval_s),
                name="mlcost-rss-sampler",
                daemon=True,
            )
            self._thread.start()

    def read(self) -> MemoryReading:
        self._sample()
        maxrss = _ru_maxrss_bytes()
        with self._lock:
            peak = self._peak_bytes
            if maxrss > self._maxrss_at_reset:
                peak = max(peak, maxrss)
        return MemoryReading(peak_bytes=peak, reserved_bytes=None, source="rss")

    def close(self) -> None:
        """Stop the sampler thread (idempotent)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._statm_fd = None
        if self._close_fd is not None:
            self._close_fd()

    def __enter__(self) -> RssMemoryMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
