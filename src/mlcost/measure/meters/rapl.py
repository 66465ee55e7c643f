"""CPU package energy from Linux powercap (RAPL): ``/sys/class/powercap/intel-rapl:<N>/energy_uj``.

AMD Zen CPUs expose the same ``intel-rapl`` zones on recent kernels. Only the top-level package zones
(``intel-rapl:0``, ``intel-rapl:1``, ...) are summed; their sub-zones (core, uncore, dram) are parts or
neighbours of them and would double-count. Since 2020 most distributions make ``energy_uj`` readable by
root only; an unreadable counter means RAPL is not available (energy is then estimated).

The counters wrap at ``max_energy_range_uj`` (a few minutes to an hour at full load); the meter polls them
in a background thread (every ``poll_interval_s``) so that a window spanning several wraps is still right.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mlcost.errors import MlcostError
from mlcost.measure.meters.base import EnergyReading

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


@dataclass(frozen=True)
class RaplZone:
    """One package zone. ``max_energy_range_uj``: where the counter wraps. Units: µJ."""

    path: Path
    name: str
    max_energy_range_uj: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def find_rapl_zones(root: Path | str = DEFAULT_POWERCAP_ROOT) -> list[RaplZone]:
    """The readable package zones under ``root``; [] when absent or unreadable. Never raises."""
    root = Path(root)
    zones: list[RaplZone] = []
    try:
        candidates = sorted(p for p in root.iterdir() if _PACKAGE_ZONE.match(p.name))
    except OSError:
        return []
    for path in candidates:
        try:
            name = (path / "name").read_text().strip() if (path / "name").exists() else path.name
            max_uj = int((path / "max_energy_range_uj").read_text().strip())
            zone = RaplZone(path=path, name=name, max_energy_range_uj=max_uj)
            zone.read_uj()  # permission check: root-only on most systems
        except (OSError, ValueError):
            return []
        zones.append(zone)
    return zones


def rapl_available(root: Path | str = DEFAULT_POWERCAP_ROOT) -> bool:
    """True when at least one RAPL package counter is readable. Never raises."""
    return bool(find_rapl_zones(root))


class RaplEnergyMeter:
    """An :class:`~mlcost.measure.meters.base.EnergyMeter` summing all RAPL package zones.

    The reading covers the whole socket(s), including other processes: the detail says so.

    Args:
        root: powercap directory (tests point it at a fake tree).
        poll_interval_s: how often a background thread reads the counters to catch wraparounds; None to
            poll only at ``begin()``/``end()`` (correct for windows shorter than one wrap). Units: s.
    """

    name = "rapl"

    def __init__(
        self, root: Path | str = DEFAULT_POWERCAP_ROOT, *, poll_interval_s: float | None = 10.0
    ) -> None:
        self.zones = find_rapl_zones(root)
        if not self.zones:
            raise MlcostError(
                f"no readable RAPL energy counter under {root}",
                hint="RAPL needs Linux powercap and read access to energy_uj (often root only); "
                "energy will be estimated instead",
            )
        self.poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._last_uj: list[int] = []
        self._total_uj = 0
        self._t0_ns: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """Read every zone and add the increase since the last read, unwrapping counter overflows."""
        with self._lock:
            now = [zone.read_uj() for zone in self.zones]
            for i, (zone, value) in enumerate(zip(self.zones, now, strict=True)):
                delta = value - self._last_uj[i]
                if delta < 0:  # wrapped past max_energy_range_uj
                    delta += zone.max_energy_range_uj
                self._total_uj += delta
            self._last_uj = now

    def _run(self) -> None:
        assert self.poll_interval_s is not None
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.poll()
            except OSError:
                return

    def begin(self) -> None:
        self._stop_thread()
        with self._lock:
            self._last_uj = [zone.read_uj() for zone in self.zones]
            self._total_uj = 0
        self._t0_ns = time.perf_counter_ns()
        if self.poll_interval_s is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mlcost-rapl-poll", daemon=True)
            self._thread.start()

    def _stop_thread(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def end(self) -> EnergyReading:
        if self._t0_ns is None:
            raise RuntimeError("RaplEnergyMeter.end() called without begin()")
        self._stop_thread()
        self.poll()
        t1_ns = time.perf_counter_ns()
        names = ", ".join(f"{z.path.name} ({z.name})" for z in self.zones)
        return EnergyReading(
            energy_j=self._total_uj / 1e6,
            source="rapl",
            detail=f"RAPL package energy, whole socket incl. other processes: {names}",
            duration_s=(t1_ns - self._t0_ns) / 1e9,
        )

    def close(self) -> None:
        self._stop_thread()
