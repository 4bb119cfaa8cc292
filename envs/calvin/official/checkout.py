"""Finding and checking a checkout of CALVIN's own env (mees/calvin_env at commit 797142c).

The checkout is found through ``CALVIN_ENV_DIR`` (a folder), else through an installed
``calvin_env`` package whose repository folder still holds ``conf/`` and ``data/`` (``pip install -e``).
It is used in place, from its path: nothing is copied from it. Its version is checked by the
SHA-256 digests of the files whose behaviour the backend and the oracle test rely on, so that a
checkout without ``.git`` (a read-only copy, as in CI) is checked as well as a clone.

Every problem is one :class:`CalvinEnvUnavailable` line that says how to get the right checkout.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

ENV_VAR = "CALVIN_ENV_DIR"
COMMIT = "797142c588c21e76717268b7b430958dbd13bf48"
SCENES = ("A", "B", "C", "D")
HOW_TO_GET = (
    f"git clone https://github.com/mees/calvin_env && git -C calvin_env checkout {COMMIT[:7]}, "
    f"then set {ENV_VAR} to that folder"
)

#: First 16 hex digits of the SHA-256 of each file at COMMIT (line endings normalised to LF).
DIGESTS = {
    "calvin_env/envs/tasks.py": "bca84af6249b2fd2",
    "calvin_env/envs/play_table_env.py": "5488fa0ae9247b62",
    "calvin_env/robot/robot.py": "b214a6d655f64abb",
    "calvin_env/robot/mixed_ik.py": "a8c3f9942969d9d6",
    "calvin_env/scene/play_table_scene.py": "d2c7cae76d0b5a68",
    "calvin_env/scene/objects/button.py": "5520a68106128cbc",
    "calvin_env/scene/objects/door.py": "5e371b32ef0e83e7",
    "calvin_env/scene/objects/switch.py": "61fbdcce1735e8d7",
    "calvin_env/scene/objects/light.py": "a5667bac0d280475",
    "calvin_env/scene/objects/movable_object.py": "f13ba3e21db00477",
    "calvin_env/scene/objects/fixed_object.py": "85592c4e7a50f7b5",
    "calvin_env/camera/static_camera.py": "aec23cf05bdcdbc5",
    "calvin_env/camera/gripper_camera.py": "aa0cd1e8e8cc0451",
    "conf/tasks/new_playtable_tasks.yaml": "6e905de3ca05118e",
    "conf/config_data_collection.yaml": "cbbab41b02d7f984",
    "conf/env/play_table_env.yaml": "b72a05e08025737c",
    "conf/robot/panda.yaml": "05458ad7e3e9b90f",
    "conf/robot/panda_longer_finger.yaml": "c63cf96f0bc652a5",
    "conf/cameras/static_and_gripper.yaml": "ef7257edee3eb790",
    "conf/cameras/cameras/static.yaml": "0b0a599edb095454",
    "conf/cameras/cameras/gripper.yaml": "c57955f0a22affcc",
}
SCENE_DIGESTS = {
    "A": "e91f76b7af095082",
    "B": "7577625ef8dc4091",
    "C": "a7cf204d27465ae8",
    "D": "f4515e439dd6b2ed",
}
TASKS_CONFIG = "conf/tasks/new_playtable_tasks.yaml"


class CalvinEnvUnavailable(RuntimeError):
    """CALVIN's env cannot be used: no checkout, the wrong version, a missing scene or dependency."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()[:16]


def _installed_root() -> Path | None:
    spec = importlib.util.find_spec("calvin_env")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def _check_files(root: Path, files: dict[str, str]) -> None:
    for rel, digest in files.items():
        path = root / rel
        if not path.is_file():
            raise CalvinEnvUnavailable(f"calvin_env checkout {root} lacks {rel}; {HOW_TO_GET}")
        if _digest(path) != digest:
            raise CalvinEnvUnavailable(
                f"calvin_env checkout {root} is not commit {COMMIT[:7]} ({rel} differs); {HOW_TO_GET}"
            )


def find_checkout(path: str | os.PathLike[str] | None = None) -> Path:
    """The checked root folder of CALVIN's env: ``path``, else ``$CALVIN_ENV_DIR``, else the installed package's."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        root = _installed_root()
        if root is None:
            raise CalvinEnvUnavailable(f"CALVIN's env not found ({ENV_VAR} is not set); {HOW_TO_GET}")
    else:
        root = Path(path).expanduser().resolve()
        if not root.is_dir():
            raise CalvinEnvUnavailable(f"{ENV_VAR}={path} is not a folder; {HOW_TO_GET}")
    _check_files(root, DIGESTS)
    return root


def check_scene(root: Path, scene: str) -> None:
    """Raise unless the checkout holds CALVIN's scene ``scene`` (its config and its table's URDF)."""
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; valid scenes: {', '.join(SCENES)}")
    _check_files(root, {f"conf/scene/calvin_scene_{scene}.yaml": SCENE_DIGESTS[scene]})
    urdf = root / "data" / f"calvin_table_{scene}" / "urdf" / f"calvin_table_{scene}.urdf"
    if not urdf.is_file():
        raise CalvinEnvUnavailable(
            f"calvin_env checkout {root} lacks scene {scene}'s table ({urdf}); {HOW_TO_GET}"
        )


def import_module(root: Path, name: str) -> ModuleType:
    """Import ``name`` (a ``calvin_env...`` module) from the checkout at ``root``.

    The checkout goes on ``sys.path`` when no ``calvin_env`` is importable yet; one imported
    from elsewhere is an error, since two versions cannot live in one process.
    """
    if importlib.util.find_spec("calvin_env") is None:
        sys.path.insert(0, str(root))
    try:
        # gym 0.26 prints a deprecation notice and hydra warns about an undecorated main at import
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            module = importlib.import_module(name)
    except ImportError as exc:
        raise CalvinEnvUnavailable(
            f"CALVIN's env needs {exc.name or exc} (pip install hydra-core omegaconf gym==0.26.2 "
            "numpy-quaternion opencv-python-headless hydra-colorlog GitPython)"
        ) from exc
    package_root = Path(importlib.import_module("calvin_env").__file__).resolve().parents[1]
    if package_root != root:
        raise CalvinEnvUnavailable(
            f"calvin_env is already imported from {package_root}, not from {root}; use one checkout per process"
        )
    return module
