"""Peak resident set size (RSS) of this process on the CPU.

Two modes, chosen at ``reset()``:

* **kernel watermark** (Linux, the default where it works): writing ``5`` to ``/proc/self/clear_refs``
  resets the kernel's peak-RSS counter (``VmHWM``; Linux ≥ 4.0), and ``read()`` returns ``VmHWM`` from
  ``/proc/self/status``. Exact (no spike is missed) and free: no thread, two small file operations per
  window. The counter is per process, so one meter owns it at a time; a meter reset while another owns
  it uses the sampler mode.
* **sampler** (elsewhere, or when the watermark is taken): ``resource.getrusage().ru_maxrss`` is the peak
  over the whole process lifetime, so it cannot report the peak of a window by itself. This mode combines
  a light background thread that samples the current RSS (psutil) every ``interval_s`` (5 ms default)
  with ``ru_maxrss``: if it rose after ``reset()``, the lifetime peak was reached inside the window, so the
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


_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"
# The meter that owns this process's kernel watermark (module docstring), if any.
_watermark_lock = threading.Lock()
_watermark_owner: weakref.ref[RssMemoryMeter] | None = None


def _reset_kernel_peak() -> bool:
    """Reset this process's kernel peak-RSS counter; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open(_CLEAR_REFS, "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _kernel_peak_bytes() is not None


def _kernel_peak_bytes() -> int | None:
    """``VmHWM`` of this process (peak RSS since start or since the last reset). Units: bytes."""
    try:
        with open(_STATUS, "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


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

    ``reset()`` records the baseline and resets the kernel watermark (or starts the sampler); ``read()``
    returns the peak since the last reset; ``close()`` stops the sampler and releases the watermark (also
    usable as a context manager). ``mode`` says which mode the last ``reset()`` chose: ``kernel-hwm`` or
    ``sampler``.

    Args:
        interval_s: sampling period of the background thread in sampler mode; None for no thread (peak
            then comes from ``ru_maxrss`` and from the samples taken at ``reset()``/``read()``). Units: s.
        kernel_peak: use the kernel watermark where possible (module docstring); False forces sampling.
    """

    name = "rss"

    def __init__(self, interval_s: float | None = 0.005, *, kernel_peak: bool = True) -> None:
        self.interval_s = interval_s
        self.kernel_peak = kernel_peak
        self.mode = "sampler"
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

    def _take_watermark(self) -> bool:
        global _watermark_owner
        with _watermark_lock:
            owner = _watermark_owner() if _watermark_owner is not None else None
            if owner is not None and owner is not self:
                return False
            if not _reset_kernel_peak():
                return False
            _watermark_owner = weakref.ref(self)
            return True

    def _release_watermark(self) -> None:
        global _watermark_owner
        with _watermark_lock:
            if _watermark_owner is not None and _watermark_owner() is self:
                _watermark_owner = None

    def reset(self) -> None:
        rss = self._rss()
        with self._lock:
            self._baseline_bytes = rss
            self._peak_bytes = rss
            self._maxrss_at_reset = _ru_maxrss_bytes()
        if self.kernel_peak and self._take_watermark():
            self.mode = "kernel-hwm"
            self._stop_thread()
            return
        self.mode = "sampler"
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
        if self.mode == "kernel-hwm":
            hwm = _kernel_peak_bytes()
            if hwm is not None:
                with self._lock:
                    return MemoryReading(
                        peak_bytes=max(hwm, self._peak_bytes), reserved_bytes=None, source="rss"
                    )
        maxrss = _ru_maxrss_bytes()
        with self._lock:
            peak = self._peak_bytes
            if maxrss > self._maxrss_at_reset:
                peak = max(peak, maxrss)
        return MemoryReading(peak_bytes=peak, reserved_bytes=None, source="rss")

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop the sampler thread and release the kernel watermark (idempotent)."""
        self._stop_thread()
        self._release_watermark()
        self._statm_fd = None
        if self._close_fd is not None:
            self._close_fd()

    def __enter__(self) -> RssMemoryMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
