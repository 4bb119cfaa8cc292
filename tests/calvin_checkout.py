"""Where the tests find CALVIN's env: ``CALVIN_ENV_DIR``, else ``../shared/calvin_env`` beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

from envs.calvin.official.checkout import ENV_VAR, CalvinEnvUnavailable, find_checkout

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "calvin_env"


def calvin_checkout() -> tuple[Path | None, str]:
    """The checked checkout and, when there is none, why (the reason tests skip with)."""
    path = os.environ.get(ENV_VAR) or (SHARED if SHARED.is_dir() else None)
    if path is None:
        return None, f"no calvin_env checkout: {ENV_VAR} is not set and {SHARED} is absent"
    try:
        return find_checkout(path), ""
    except CalvinEnvUnavailable as exc:
        return None, str(exc)
