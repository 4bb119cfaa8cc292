"""A clear error instead of a SAPIEN stack trace when there is no usable Vulkan device."""

from __future__ import annotations

import functools

INSTALL_HINT = (
    "SAPIEN (ManiSkill3) needs a Vulkan device even without cameras. On a machine without a GPU, "
    "install Mesa >= 25's software rasteriser lavapipe: on Debian 12 run `sudo bash scripts/install_vulkan.sh` "
    "(mesa-vulkan-drivers from bookworm-backports; Debian 12's own Mesa 22.3 is refused), elsewhere install "
    "your distribution's mesa-vulkan-drivers and libvulkan1; check with `vulkaninfo --summary`."
)


class VulkanUnavailable(RuntimeError):
    """No Vulkan device SAPIEN accepts; the message says how to install one."""


_MARKERS = ("vulkan", "physical device", "vk::", "renderer", "libvulkan")


def is_vulkan_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(m in text for m in _MARKERS)


@functools.cache
def check_vulkan() -> str:
    """Create a SAPIEN render device once; return its name or raise :class:`VulkanUnavailable`."""
    try:
        import sapien
    except ImportError as exc:
        raise VulkanUnavailable(
            f"the SimplerEnv-style suite needs mani-skill (pip install 'mani-skill==3.0.1'): {exc}"
        ) from None
    try:
        device = sapien.render.get_device_summary() if hasattr(sapien.render, "get_device_summary") else ""
        sapien.render.RenderSystem()
    except Exception as exc:  # SAPIEN raises plain RuntimeErrors from C++
        raise VulkanUnavailable(f"no usable Vulkan device ({exc}). {INSTALL_HINT}") from None
    return str(device)
