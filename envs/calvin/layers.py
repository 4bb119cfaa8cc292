"""Layered TinyRenderer drawing for a camera that never moves.

A scene seen from a fixed camera is mostly still: the desk and shelf never move, the drawer, doors,
buttons and blocks move only when the arm touches them, and often only the arm is in motion. So the
image is drawn in three layers, each a colour image with its depth buffer:

- the background: the links that can never move (fixed bases joined by fixed joints), drawn once;
- the resting layer: the other links that have kept their pose and colours for ``REST_FRAMES``
  frames, drawn again only when one of them moves or changes colour (or another one comes to rest);
- the moving layer: what is left (usually the arm), drawn every frame, and only inside the
  rectangle of the image that its links' bounding boxes can cover.

The layers are laid together by depth, the nearer surface showing. The result equals a render of
the whole scene except at a pixel or two where surfaces of two layers meet at equal depth
(``tests/test_env.py``). TinyRenderer skips shapes with zero alpha, which is how a layer leaves out
the links of the others; every colour is restored after each draw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import pybullet as p

Link = tuple[int, int]  # (body unique id, link index; -1 the base)
Layer = tuple[np.ndarray, np.ndarray]  # (rgb uint8 H x W x 3, depth buffer float32 H x W)
Box = tuple[int, int, int, int]  # (first row, end row, first column, end column) of the image

# Frames a link must keep its pose and colours, exactly (TinyRenderer can draw a large triangle
# differently after a 1e-5 m move), before it joins the resting layer.
REST_FRAMES = 3
BOX_PAD_M, BOX_PAD_PX = 0.005, 2  # margins of the moving layer's rectangle around its links


def camera_image(cid: int, width: int, height: int, view, proj, flags: int) -> tuple[np.ndarray, ...]:
    """``(rgb, depth buffer, segmentation)`` of one TinyRenderer image, ``height`` x ``width``."""
    _, _, rgba, depth, seg = p.getCameraImage(
        width,
        height,
        viewMatrix=view,
        projectionMatrix=proj,
        renderer=p.ER_TINY_RENDERER,
        flags=flags,
        physicsClientId=cid,
    )
    shape = (height, width)
    return (
        np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy(),
        np.asarray(depth, dtype=np.float32).reshape(shape),
        np.asarray(seg, dtype=np.int64).reshape(shape),
    )


def fixed_links(cid: int, exclude: Sequence[Link] = ()) -> list[Link]:
    """The links with a visual shape that can never move: on a body with a fixed base (mass 0),
    joined to that base by fixed joints only; ``exclude`` (e.g. lights that change colour) left out."""
    found = []
    for uid in _bodies(cid):
        if p.getDynamicsInfo(uid, -1, physicsClientId=cid)[0] != 0:
            continue
        for link in _shown_links(cid, uid):
            at = link
            while at != -1 and p.getJointInfo(uid, at, physicsClientId=cid)[2] == p.JOINT_FIXED:
                at = p.getJointInfo(uid, at, physicsClientId=cid)[16]
            if at == -1 and (uid, link) not in exclude:
                found.append((uid, link))
    return found


def _bodies(cid: int) -> list[int]:
    return [p.getBodyUniqueId(i, physicsClientId=cid) for i in range(p.getNumBodies(physicsClientId=cid))]


def _shown_links(cid: int, uid: int) -> list[int]:
    """The links of body ``uid`` that have a visual shape, in shape order."""
    return list(dict.fromkeys(v[1] for v in p.getVisualShapeData(uid, physicsClientId=cid)))


def _reported_colours(cid: int, uids) -> dict[Link, tuple]:
    """Each link's shapes' RGBA colours as PyBullet reports them, in shape order.

    After ``changeVisualShape`` with a ``shapeIndex`` on a link with several shapes, PyBullet draws
    each shape in its own colour but reports the last colour set for all of them; so a layer keeps
    its own table of the true colours and reads reports only to notice changes made by others.
    """
    out: dict[Link, list[tuple]] = {}
    for uid in uids:
        for v in p.getVisualShapeData(uid, physicsClientId=cid):
            out.setdefault((uid, v[1]), []).append(tuple(v[7]))
    return {link: tuple(c) for link, c in out.items()}


def _over(under: Layer, top: Layer, box: Box) -> None:
    """Lay ``top`` (the image inside ``box``) over ``under`` in place, by depth."""
    r0, r1, c0, c1 = box
    rgb, depth = under[0][r0:r1, c0:c1], under[1][r0:r1, c0:c1]
    nearer = top[1] < depth
    rgb[nearer] = top[0][nearer]
    depth[nearer] = top[1][nearer]


class LayeredRenderer:
    """Draws ``size`` x ``size`` images of one world from a fixed camera in three layers (see the
    module docstring); :meth:`reset` after the world is built."""

    def __init__(self, size: int, view, proj) -> None:
        self.size, self.view, self.proj = size, view, proj
        self._clip = np.array(proj).reshape(4, 4).T @ np.array(view).reshape(4, 4).T
        self._fixed: set[Link] = set()
        self._colours: dict[Link, list[tuple]] = {}  # every shape's true colour, per link
        self._reported: dict[Link, tuple] = {}  # PyBullet's report of them after our last draw
        self._movers: dict[int, list[int]] = {}  # body -> its links that may move or change colour
        self._background: Layer | None = None
        self._under: Layer | None = None  # background with the resting layer laid over it
        self._resting: dict[Link, np.ndarray] = {}  # the resting layer's links, with their state then
        self._last: dict[Link, np.ndarray] = {}  # each mover's state at the last frame
        self._still: dict[Link, int] = {}  # frames each mover has kept its state
        self.drawn: dict[str, int] = {}  # the last frame: links per layer, pixels drawn, redraws
        self.whole_redraws = 0  # moving layers drawn again over the whole image (a rectangle too small)

    def reset(self, cid: int, fixed: Sequence[Link]) -> None:
        """A newly built world whose links ``fixed`` never move and never change colour; no shape's
        colour may have been changed on its own yet (``shapeIndex``), so that PyBullet reports the
        true colours."""
        self._reported = _reported_colours(cid, _bodies(cid))
        self._colours = {link: list(c) for link, c in self._reported.items()}
        self._fixed = set(fixed)
        self._movers = {}
        for uid in _bodies(cid):
            movers = [link for link in _shown_links(cid, uid) if (uid, link) not in self._fixed]
            if movers:
                self._movers[uid] = movers
        self._background = self._under = None
        self._resting, self._last, self._still = {}, {}, {}

    def render(self, cid: int) -> np.ndarray:
        """The camera's RGB image of the world as it is now."""
        states = self._states(cid)
        for link, state in states.items():
            last = self._last.get(link)
            kept = last is not None and np.array_equal(state, last)
            self._still[link] = self._still.get(link, 0) + 1 if kept else 0
        self._last = states
        if self._background is None:
            self._background = self._draw(cid, set(states), self._full())[0]
        resting = {link for link, n in self._still.items() if n >= REST_FRAMES}
        moved = any(not np.array_equal(states[link], then) for link, then in self._resting.items())
        redraw = self._under is None or moved or not resting <= self._resting.keys()
        if redraw:
            self._resting = {link: states[link] for link in resting}
            self._under = (self._background[0].copy(), self._background[1].copy())
            if resting:
                self._lay(cid, list(resting), [link for link in states if link not in resting], self._under)
        moving = [link for link in states if link not in self._resting]
        rgb, depth = self._under[0].copy(), self._under[1].copy()
        pixels = self._lay(cid, moving, list(self._resting), (rgb, depth)) if moving else 0
        self.drawn = {
            "resting": len(self._resting),
            "moving": len(moving),
            "pixels": pixels,
            "redraw": int(redraw),
        }
        return rgb

    # --- drawing -------------------------------------------------------------------------------
    def _lay(self, cid: int, links: list[Link], others: list[Link], under: Layer) -> int:
        """Draw ``links`` alone (the fixed links and ``others`` hidden) inside their rectangle of the
        image and lay them over ``under``; returns the pixels drawn."""
        box = self._box(cid, links)
        if box is None:
            return 0
        top, box = self._draw(cid, self._fixed | set(others), box)
        _over(under, top, box)
        return (box[1] - box[0]) * (box[3] - box[2])

    def _draw(self, cid: int, hide: set[Link], box: Box) -> tuple[Layer, Box]:
        """The layer with the links of ``hide`` invisible, inside ``box``; drawn again over the whole
        image if anything reaches an edge of the box that is not an edge of the image (a link's
        visual shape beyond its bounding box)."""
        with self._hidden(cid, hide):
            layer = self._image(cid, box)
            if box != self._full() and self._touches_edge(layer[1], box):
                box = self._full()
                layer = self._image(cid, box)
                self.whole_redraws += 1
        return layer, box

    @contextlib.contextmanager
    def _hidden(self, cid: int, links: set[Link]):
        """The links invisible for the block (TinyRenderer skips zero-alpha shapes), then each shape
        back in its colour."""
        for uid, link in links:
            p.changeVisualShape(uid, link, rgbaColor=(0, 0, 0, 0), physicsClientId=cid)
        try:
            yield
        finally:
            for uid, link in links:
                for i, rgba in enumerate(self._colours[uid, link]):
                    p.changeVisualShape(uid, link, shapeIndex=i, rgbaColor=rgba, physicsClientId=cid)
            self._reported.update(_reported_colours(cid, {uid for uid, _ in links}))

    def _image(self, cid: int, box: Box) -> Layer:
        r0, r1, c0, c1 = box
        rows, cols = r1 - r0, c1 - c0
        # Scale and shift normalised device coordinates so that the box fills the viewport: the
        # same pixel centres as the whole image, so the crop equals that part of a whole render.
        cx, cy = (c0 + c1) / self.size - 1.0, 1.0 - (r0 + r1) / self.size
        sx, sy = self.size / cols, self.size / rows
        crop = np.array([[sx, 0, 0, -sx * cx], [0, sy, 0, -sy * cy], [0, 0, 1, 0], [0, 0, 0, 1]])
        proj = tuple((crop @ np.array(self.proj).reshape(4, 4).T).T.ravel())
        return camera_image(cid, cols, rows, self.view, proj, p.ER_NO_SEGMENTATION_MASK)[:2]

    def _touches_edge(self, depth: np.ndarray, box: Box) -> bool:
        drawn = depth < 1.0
        r0, r1, c0, c1 = box
        edges = []
        if r0 > 0:
            edges.append(drawn[0, :])
        if r1 < self.size:
            edges.append(drawn[-1, :])
        if c0 > 0:
            edges.append(drawn[:, 0])
        if c1 < self.size:
            edges.append(drawn[:, -1])
        return any(edge.any() for edge in edges)

    def _full(self) -> Box:
        return (0, self.size, 0, self.size)

    def _box(self, cid: int, links: list[Link]) -> Box | None:
        """The rectangle of the image that the links' bounding boxes can cover (None: off screen)."""
        corners = []
        for uid, link in links:
            lo, hi = (np.array(v) for v in p.getAABB(uid, link, physicsClientId=cid))
            lo, hi = lo - BOX_PAD_M, hi + BOX_PAD_M
            corners.extend((x, y, z) for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2]))
        points = np.c_[np.array(corners), np.ones(len(corners))] @ self._clip.T
        if (points[:, 3] <= 1e-6).any():  # a corner behind the camera: no safe rectangle
            return self._full()
        ndc = points[:, :2] / points[:, 3:]
        cols = (ndc[:, 0] + 1.0) * self.size / 2
        rows = (1.0 - ndc[:, 1]) * self.size / 2
        r0 = max(0, int(np.floor(rows.min())) - BOX_PAD_PX)
        r1 = min(self.size, int(np.ceil(rows.max())) + BOX_PAD_PX)
        c0 = max(0, int(np.floor(cols.min())) - BOX_PAD_PX)
        c1 = min(self.size, int(np.ceil(cols.max())) + BOX_PAD_PX)
        return (r0, r1, c0, c1) if r1 > r0 and c1 > c0 else None

    def _states(self, cid: int) -> dict[Link, np.ndarray]:
        """Every mover's world pose and its shapes' colours, one vector per link (a colour that
        someone else changed since our last draw taken from PyBullet's report)."""
        reported = _reported_colours(cid, self._movers)
        for link, colours in reported.items():
            if colours != self._reported.get(link):
                self._colours[link] = list(colours)
                self._reported[link] = colours
        out: dict[Link, np.ndarray] = {}
        for uid, links in self._movers.items():
            joints = [link for link in links if link != -1]
            poses: dict[int, tuple] = {}
            if joints:
                states = p.getLinkStates(uid, joints, computeForwardKinematics=1, physicsClientId=cid)
                poses.update((link, s[4] + s[5]) for link, s in zip(joints, states, strict=True))
            if -1 in links:
                pos, orn = p.getBasePositionAndOrientation(uid, physicsClientId=cid)
                poses[-1] = pos + orn
            for link in links:
                out[uid, link] = np.array(poses[link] + sum(self._colours[uid, link], ()))
        return out
