"""Every environment variable and user directory mlcost reads, in one place (the application edge).

Library code (spec, catalog, estimate, plan, finance, calibrate) never calls these: it takes the values as
arguments. The CLI and :mod:`mlcost.context` call them once, where the program starts.

===========================  ===================================================================================
``MLCOST_CATALOG``           catalog override files (TOML), ``os.pathsep``-separated; applied after the saved
                             calibration, before ``--catalog`` files
``MLCOST_PROFILE_DIR``       where ``mlcost calibrate`` saves ``profile.toml`` and ``calibration.json``
                             (default: the user data dir)
``MLCOST_LEDGER``            the run ledger: a SQLAlchemy URL or a path (default: ``<user data dir>/ledger.db``)
===========================  ===================================================================================

The user data dir is ``platformdirs.user_data_dir("mlcost")`` (``~/.local/share/mlcost`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_CATALOG = "MLCOST_CATALOG"
ENV_PROFILE_DIR = "MLCOST_PROFILE_DIR"
ENV_LEDGER = "MLCOST_LEDGER"
#: Every environment variable mlcost reads.
#: Where `mlcost compress` caches the example models it trains (digits CNN, tiny GPT).
ENV_CACHE_DIR = "MLCOST_CACHE_DIR"
ENV_VARS: tuple[str, ...] = (ENV_CATALOG, ENV_PROFILE_DIR, ENV_LEDGER, ENV_CACHE_DIR)

PROFILE_TOML = "profile.toml"
CALIBRATION_JSON = "calibration.json"
LEDGER_FILE = "ledger.db"


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def user_data_dir() -> Path:
    """``platformdirs.user_data_dir("mlcost")``."""
    import platformdirs

    return Path(platformdirs.user_data_dir("mlcost"))


def cache_dir() -> Path:
    """Where trained examples are cached: ``$MLCOST_CACHE_DIR`` or the user cache directory."""
    env = _env(ENV_CACHE_DIR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("mlcost"))


def profile_dir() -> Path:
    """Where calibrated profiles live: ``$MLCOST_PROFILE_DIR`` or the user data dir."""
    env = _env(ENV_PROFILE_DIR)
    return Path(env) if env else user_data_dir()


def profile_toml_path() -> Path:
    """The catalog override file ``mlcost calibrate`` saves (it may not exist)."""
    return profile_dir() / PROFILE_TOML


def calibration_json_path() -> Path:
    """The calibration's provenance file ``mlcost calibrate`` saves (it may not exist)."""
    return profile_dir() / CALIBRATION_JSON


def catalog_override_paths() -> list[Path]:
    """The override files listed in ``$MLCOST_CATALOG``, in order."""
    return [Path(p) for p in _env(ENV_CATALOG).split(os.pathsep) if p.strip()]


def ledger_setting() -> str | None:
    """``$MLCOST_LEDGER`` (a SQLAlchemy URL or a path), or None when unset."""
    return _env(ENV_LEDGER) or None


def default_ledger_path() -> Path:
    """``<user data dir>/ledger.db``: the ledger when neither ``--ledger`` nor ``$MLCOST_LEDGER`` is given."""
    return user_data_dir() / LEDGER_FILE
