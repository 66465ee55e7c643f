"""The application edge: the default catalog (package data + this machine's calibration + user overrides),
built once, cached and invalidated here. The CLI and the top-level API call :func:`default_catalog` and pass
the result down; library functions never look for it themselves.

Order of the override files (a later file wins): the calibration ``mlcost calibrate`` saved
(:func:`mlcost.paths.profile_toml_path`), then ``$MLCOST_CATALOG`` files, then ``extra`` (``--catalog``).

The saved calibration applies only on the host it was measured on (CPU model, ISA flags, logical CPUs,
recorded in ``calibration.json``). On another host mlcost warns once on stderr and ``--device local`` falls
back to this host's catalog row or the generic row of its detected ISA (:mod:`mlcost.catalog.host`).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlcost import paths
from mlcost.calibrate.profile import Calibration, load_calibration
from mlcost.catalog import LOCAL_ID, Catalog, HostCpu, detect_host, match_cpu_row

_CACHE: dict[tuple[str, ...], Catalog] = {}
_WARNED: set[str] = set()


@dataclass(frozen=True, kw_only=True)
class CalibrationStatus:
    """The saved calibration and whether it applies here.

    Attributes:
        directory: where calibrations are saved (``$MLCOST_PROFILE_DIR`` or the user data dir).
        calibration: the saved calibration, or None when this machine was never calibrated.
        mismatch: why it was measured on another host (one line), or None when it applies (or is absent).
    """

    directory: Path
    calibration: Calibration | None
    mismatch: str | None

    @property
    def applies(self) -> bool:
        return self.calibration is not None and self.mismatch is None


def calibration_status(host: HostCpu | None = None) -> CalibrationStatus:
    """The saved calibration (from :func:`mlcost.paths.profile_dir`) checked against ``host`` (this
    machine by default)."""
    directory = paths.profile_dir()
    try:
        cal = load_calibration(directory)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return CalibrationStatus(
            directory=directory, calibration=None, mismatch=f"unreadable calibration: {exc}"
        )
    if cal is None:
        return CalibrationStatus(directory=directory, calibration=None, mismatch=None)
    here = host if host is not None else detect_host()
    recorded = cal.provenance.get("host_cpu")
    why = here.differs_from(recorded) if isinstance(recorded, dict) else "no host identity recorded"
    return CalibrationStatus(directory=directory, calibration=cal, mismatch=why)


def local_calibration(host: HostCpu | None = None, *, warn: bool = True) -> Calibration | None:
    """The saved calibration if it was measured on this host, else None (with a one-line warning on
    stderr when one exists for another host)."""
    status = calibration_status(host)
    if status.mismatch is not None and status.calibration is not None and warn:
        _warn_mismatch(status)
    return status.calibration if status.applies else None


def _warn_mismatch(status: CalibrationStatus) -> None:
    msg = (
        f"mlcost: warning: the calibration in {status.directory} was measured on another host "
        f"({status.mismatch}); not using it — '--device local' uses this host's detected-ISA defaults "
        "(run `mlcost calibrate` here to replace it)"
    )
    if msg not in _WARNED:
        _WARNED.add(msg)
        print(msg, file=sys.stderr)


def host_local_device(catalog: Catalog, host: HostCpu) -> Catalog:
    """``catalog`` with a ``local`` row for an uncalibrated host: its catalog row or the generic row of
    its ISA (labelled), with the ``default-cpu`` efficiency profile."""
    match = match_cpu_row(catalog, host)
    if match is None:
        return catalog
    device = dataclasses.replace(
        match.device,
        id=LOCAL_ID,
        name=f"this host, not calibrated ({match.device.name})",
        source=f"{match.label}; {match.device.source}",
    )
    return catalog.with_device(device)


def default_catalog(
    extra: Sequence[Path | str] | None = None, *, calibration: bool = True, host: HostCpu | None = None
) -> Catalog:
    """The catalog the CLI uses: package data, the saved calibration (when ``calibration`` and it was
    measured on ``host``, this machine by default), ``$MLCOST_CATALOG`` files, then ``extra``. Cached per
    set of files and their modification times; :func:`invalidate` forgets it."""
    files: list[Path] = []
    status = calibration_status(host) if calibration else None
    if status is not None and status.applies and paths.profile_toml_path().is_file():
        files.append(paths.profile_toml_path())
    files += paths.catalog_override_paths()
    files += [Path(p) for p in extra or ()]
    key = tuple(f"{p}@{_mtime(p)}" for p in files)
    if status is not None and status.calibration is not None and status.mismatch is not None:
        key += ("host-fallback", status.mismatch)
    if key not in _CACHE:
        catalog = Catalog.from_paths(overrides=files)
        if status is not None and status.calibration is not None and status.mismatch is not None:
            catalog = host_local_device(catalog, host if host is not None else detect_host())
        _CACHE[key] = catalog
    if status is not None and status.calibration is not None and status.mismatch is not None:
        _warn_mismatch(status)
    return _CACHE[key]


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def invalidate(*, builtin: bool = True) -> None:
    """Forget cached catalogs and warnings given (after ``mlcost calibrate`` saved a profile, or an override
    file changed); ``builtin=False`` keeps the loaded package data, which never changes while running."""
    from mlcost.catalog import clear_cache

    _CACHE.clear()
    _WARNED.clear()
    if builtin:
        clear_cache()
