"""VLA policies loaded from trainer checkpoints (``--policy vla:CHECKPOINT_DIR``)."""

from policies.vla.policy import VLAPolicy, make_vla

__all__ = ["VLAPolicy", "make_vla"]
