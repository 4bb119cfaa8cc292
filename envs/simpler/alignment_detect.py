"""What the alignment figures measure in images: projections through a camera, intensity steps
along a line, objects that differ from the empty scene (:mod:`envs.simpler.alignment_google`).

Pixels are (u, v): column, row. Cameras are an intrinsic matrix ``k`` (3 x 3) and an OpenCV
extrinsic ``e`` (3 x 4, world to camera).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

EDGE_WINDOW_PX = 20  # an edge of the overlay is looked for this far either side of ours
MIN_STEP = 1.5  # grey levels per pixel (after smoothing): weaker steps are no edge
SATURATED = 0.15  # more saturated than the empty scene by this much: a coloured object, not a shadow
DARK = 0.3  # this fraction of the empty scene's brightness, or less: a dark object (shadows here keep 0.4)
CHANGED = 40  # colour difference (max over channels) from the overlay that counts as an object
OBJECT_NEAR_PX = 40  # a real object is looked for this far around our object's bounding box


# --- geometry -------------------------------------------------------------------------------------
def project(k: np.ndarray, e: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n, 2) pixels (u, v) of world points (n, 3) through intrinsic ``k`` and extrinsic ``e`` (3 x 4, OpenCV)."""
    cam = e[:, :3] @ np.asarray(points, dtype=np.float64).T + e[:, 3:]
    uv = k @ cam
    return (uv[:2] / uv[2]).T


def on_plane(k: np.ndarray, e: np.ndarray, uv: np.ndarray, z: float) -> np.ndarray:
    """(n, 3) world points where the rays through pixels ``uv`` (n, 2) meet the plane at height ``z``."""
    r, t = e[:, :3], e[:, 3]
    origin = -r.T @ t
    rays = r.T @ np.linalg.solve(k, np.vstack([np.asarray(uv, dtype=np.float64).T, np.ones(len(uv))]))
    s = (z - origin[2]) / rays[2]
    return (origin[:, None] + s * rays).T


def pose_matrix(p: Any, q_wxyz: Any) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    w, x, y, z = q_wxyz
    m = np.eye(4)
    m[:3, :3] = Rotation.from_quat([x, y, z, w]).as_matrix()
    m[:3, 3] = p
    return m


# --- detection ------------------------------------------------------------------------------------
def smoothed_gray(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    return ndimage.gaussian_filter(np.asarray(rgb, dtype=np.float64).mean(axis=-1), sigma)


def edge_offsets(
    gray: np.ndarray, p0: Any, p1: Any, window: int = EDGE_WINDOW_PX, n: int = 40
) -> tuple[np.ndarray, np.ndarray]:
    """For ``n`` points along the segment ``p0``-``p1`` (pixels u, v), the signed distance along the
    segment's normal (u, v) = (-dv, du) to the strongest intensity step within ``window`` pixels,
    NaN where the point is outside the image or no step reaches :data:`MIN_STEP`; and the found points."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    d = (p1 - p0) / np.linalg.norm(p1 - p0)
    normal = np.array([-d[1], d[0]])
    gv, gu = np.gradient(gray)
    s = p0 + ((np.arange(n) + 0.5) / n)[:, None] * (p1 - p0)
    t = np.arange(-window, window + 1, dtype=np.float64)
    pts = s[:, None, :] + t[None, :, None] * normal  # (n, 2w+1, 2)
    coords = [pts[..., 1].ravel(), pts[..., 0].ravel()]
    step = (
        ndimage.map_coordinates(gu, coords, order=1) * normal[0]
        + ndimage.map_coordinates(gv, coords, order=1) * normal[1]
    )
    step = np.abs(step.reshape(pts.shape[:2]))
    best = step.argmax(axis=1)
    offsets = t[best]
    h, w = gray.shape
    inside = (s[:, 0] >= window) & (s[:, 0] < w - window) & (s[:, 1] >= window) & (s[:, 1] < h - window)
    offsets[~inside | (step.max(axis=1) < MIN_STEP)] = np.nan
    return offsets, s + offsets[:, None] * normal


def step_line(gray: np.ndarray, rows: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The line of strongest dark-above, bright-below step between ``rows`` (a wall meeting a lighter
    floor): per column the row of the largest downward brightening, then a line fitted to the columns
    that agree. Returns the columns, their rows and a mask of the columns the line kept."""
    gv = np.gradient(gray, axis=0)[rows[0] : rows[1]]
    cols = np.arange(gray.shape[1])
    found = rows[0] + gv.argmax(axis=0).astype(np.float64)
    keep = gv.max(axis=0) >= MIN_STEP
    for _ in range(5):
        slope, intercept = np.polyfit(cols[keep], found[keep], 1)
        resid = found - (slope * cols + intercept)
        spread = 1.4826 * np.median(np.abs(resid[keep]))
        keep = keep & (np.abs(resid) <= max(3.0, 3.0 * spread))
    return cols, found, keep


def near_region(mask: np.ndarray, margin: int) -> np.ndarray:
    """``mask``'s bounding box grown by ``margin`` pixels on each side (clipped); empty for an empty mask."""
    ys, xs = np.nonzero(mask)
    region = np.zeros(mask.shape, bool)
    if len(xs):
        y0, x0 = max(0, ys.min() - margin), max(0, xs.min() - margin)
        region[y0 : ys.max() + 1 + margin, x0 : xs.max() + 1 + margin] = True
    return region


def object_mask(
    real: np.ndarray, empty: np.ndarray, near: np.ndarray, margin: int = OBJECT_NEAR_PX
) -> np.ndarray:
    """The largest patch near ``near`` (our object's mask) where ``real`` differs from the empty scene
    by more than :data:`CHANGED` and not by shade alone (a shadow keeps the table's colour: only
    brighter, more saturated or far darker pixels count). A reflection on the glossy table may still join the
    patch below the object, which is why objects are compared by their tops and widths."""
    real, empty = np.asarray(real, dtype=np.float64), np.asarray(empty, dtype=np.float64)

    def saturation(rgb: np.ndarray) -> np.ndarray:
        top = rgb.max(axis=-1)
        return (top - rgb.min(axis=-1)) / np.maximum(top, 1.0)

    changed = np.abs(real - empty).max(axis=-1) > CHANGED
    brighter = real.mean(-1) - empty.mean(-1) > CHANGED
    darker = real.mean(-1) < DARK * empty.mean(-1)  # darker than any shadow here: a dark object
    colour = (saturation(real) - saturation(empty) > SATURATED) | brighter | darker
    region = near_region(near, margin)
    square = np.ones((3, 3), bool)
    mask = ndimage.binary_opening(changed & colour & region, structure=square)
    # a highlight on the object is neither saturated nor much brighter: close the gaps it leaves
    mask = ndimage.binary_closing(mask, structure=square, iterations=4)
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))


def top_and_width(mask: np.ndarray) -> tuple[float, float, float]:
    """The mask's top centre (u, v: the mean column of its top 5 rows) and its widest row in its
    upper 40 % (pixels): both untouched by a shadow or reflection, which fall below an object here."""
    rows = np.nonzero(mask.any(axis=1))[0]
    top = int(rows[0])
    u = float(np.nonzero(mask[top : top + 5])[1].mean())
    upper = mask[top : top + max(1, int(0.4 * (rows[-1] - top + 1)))]
    spans = [np.ptp(np.nonzero(r)[0]) + 1 for r in upper if r.any()]
    return u, float(top), float(max(spans))


def compare_objects(ours: np.ndarray, real: np.ndarray, prefix: str) -> dict[str, float]:
    """IoU of our object's mask and the real one, the offset of their tops (ours minus real, px) and
    the ratio of their widths (ours over real: above 1, our camera sees the object nearer or larger)."""
    from envs.simpler.alignment import compare_masks

    if not (ours.any() and real.any()):
        raise ValueError(f"{prefix}: {'our' if not ours.any() else 'the real'} object is not in view")
    (u0, v0, w0), (u1, v1, w1) = top_and_width(ours), top_and_width(real)
    return {
        f"{prefix}_iou": compare_masks(ours, real)["robot_iou"],
        f"{prefix}_top_dx_px": u0 - u1,
        f"{prefix}_top_dy_px": v0 - v1,
        f"{prefix}_width_ratio": w0 / w1,
    }
