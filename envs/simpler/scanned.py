"""SimplerEnv's scanned objects (``$SIMPLER_ASSET_DIR/custom/models/<id>``) as ManiSkill actors.

Each model has ``collision.obj`` (convex parts) and a textured visual mesh; ``info_*.json`` gives its
scales, bounding box and density. Three models of SimplerEnv ship without their visual mesh (the
eggplant, the redbull can, the blue bottle): they are drawn with their collision mesh in one colour
(:data:`FALLBACK_COLOURS`), which README states.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from envs.simpler.assets import SimplerAssetsMissing, require_simpler_files

VISUAL_FILES = ("textured.obj", "textured.dae", "textured.glb")
#: Plain colours for models whose visual mesh is missing from SimplerEnv's data folder.
FALLBACK_COLOURS = {
    "eggplant": (0.33, 0.16, 0.38, 1.0),
    "opened_redbull_can": (0.2, 0.3, 0.6, 1.0),
    "baked_opened_redbull_can_v2": (0.2, 0.3, 0.6, 1.0),
    "blue_plastic_bottle": (0.35, 0.55, 0.85, 1.0),
}


@functools.cache
def _model_db(path: Path) -> dict:
    return json.loads(path.read_text())


class ScannedModels:
    """The models of one ``info_*.json`` (SimplerEnv's model database)."""

    def __init__(self, model_json: str) -> None:
        self.root = require_simpler_files([f"custom/{model_json}"])
        self.model_json = model_json
        self.db = _model_db(self.root / "custom" / model_json)

    def info(self, model_id: str) -> dict:
        if model_id not in self.db:
            raise ValueError(f"{self.model_json}: unknown model {model_id!r}; valid: {', '.join(self.db)}")
        return self.db[model_id]

    def model_dir(self, model_id: str) -> Path:
        return self.root / "custom" / "models" / model_id

    def require(self, model_ids: list[str], overlay: str | None = None) -> None:
        """Check the files every model (and the overlay image) needs before anything is built."""
        files = [f"custom/models/{m}/collision.obj" for m in model_ids]
        if overlay is not None:
            files.append(overlay)
        require_simpler_files(files)
        for m in model_ids:
            self.info(m)
            if self.visual_file(m) is None and m not in FALLBACK_COLOURS:
                raise SimplerAssetsMissing(
                    f"missing visual mesh of {m}: none of {', '.join(VISUAL_FILES)} in {self.model_dir(m)}"
                )

    def visual_file(self, model_id: str) -> Path | None:
        for name in VISUAL_FILES:
            if (self.model_dir(model_id) / name).exists():
                return self.model_dir(model_id) / name
        return None

    def scale(self, model_id: str) -> float:
        """SimplerEnv draws one of the model's scales per episode; every Bridge model has one."""
        return float(self.info(model_id).get("scales", [1.0])[0])

    def bbox_size(self, model_id: str) -> np.ndarray:
        bbox = self.info(model_id)["bbox"]
        return (np.array(bbox["max"]) - np.array(bbox["min"])) * self.scale(model_id)

    def build(
        self, scene: Any, model_id: str, friction: float, *, kinematic: bool = False, initial_pose: Any = None
    ) -> Any:
        import sapien

        scale = [self.scale(model_id)] * 3
        density = float(self.info(model_id).get("density", 1000))
        builder = scene.create_actor_builder()
        material = sapien.physx.PhysxMaterial(friction, friction, 0.0)
        collision = str(self.model_dir(model_id) / "collision.obj")
        builder.add_multiple_convex_collisions_from_file(
            filename=collision, scale=scale, material=material, density=density
        )
        visual = self.visual_file(model_id)
        if visual is not None:
            builder.add_visual_from_file(filename=str(visual), scale=scale)
        else:
            colour = sapien.render.RenderMaterial(base_color=list(FALLBACK_COLOURS[model_id]), roughness=0.6)
            builder.add_visual_from_file(filename=collision, scale=scale, material=colour)
        if initial_pose is not None:
            builder.initial_pose = initial_pose
        return builder.build_kinematic(name=model_id) if kinematic else builder.build(name=model_id)
