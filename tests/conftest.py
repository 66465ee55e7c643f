"""Suite-wide isolation: every test gets its own user state, so results never depend on the developer's
home directory, calibration, ledger or catalog overrides."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcost import context, paths


@pytest.fixture(autouse=True)
def _isolated_user_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Unset every ``MLCOST_*`` variable, then point the profile dir, the ledger and the user data dir at a
    fresh directory (``MLCOST_CATALOG`` stays unset)."""
    root = tmp_path_factory.mktemp("user")
    for name in list(os.environ):
        if name.startswith("MLCOST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(paths.ENV_PROFILE_DIR, str(root / "profiles"))
    monkeypatch.setenv(paths.ENV_LEDGER, f"sqlite:///{root / 'ledger.db'}")
    monkeypatch.setenv("XDG_DATA_HOME", str(root / "xdg-data"))
    monkeypatch.setattr(paths, "user_data_dir", lambda: root / "data")
    context.invalidate(builtin=False)
    yield root
    context.invalidate(builtin=False)
