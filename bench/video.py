"""Rollout videos: ``env.render()`` frames with the current instruction written below them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np


def annotate_frame(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` (H, W, 3 uint8) with a black two-line caption strip below it."""
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    image = Image.new("RGB", (w, h + 26))
    image.paste(Image.fromarray(frame[..., :3].astype(np.uint8)), (0, 0))
    lines = textwrap.wrap(text, width=max(8, w // 6))[:2]
    ImageDraw.Draw(image).multiline_text((2, h + 1), "\n".join(lines), fill=(255, 255, 255), spacing=1)
    return np.asarray(image)


def video_suffix() -> str:
    """``.mp4`` when imageio's ffmpeg plugin is installed, else ``.gif``."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return ".gif"
    return ".mp4"


class VideoRecorder:
    """Streams ``env.render()`` frames with a caption into ``video_dir/NAME.mp4`` (or .gif;
    nothing when ``video_dir`` is None). As a context manager it puts ``video`` (the file name) and/or
    ``video_error`` into ``record``: a rendering or writing failure stops the recording, never the unit.
    """

    def __init__(self, env: Any, video_dir: str | Path | None, name: str, record: dict | None = None):
        self.env, self.record = env, record
        self.path = None if video_dir is None else Path(video_dir) / f"{name}{video_suffix()}"
        self.writer: Any = None
        self.error: str | None = None

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.path is not None and self.record is not None:
            self.record.update(self.close())

    def add(self, caption: str) -> None:
        if self.path is None or self.error is not None:
            return
        try:
            frame = self.env.render()
            if frame is None:
                raise RuntimeError("env.render() returned None (render_mode is not 'rgb_array')")
            if self.writer is None:
                import imageio.v2 as imageio

                self.path.parent.mkdir(parents=True, exist_ok=True)
                options = (
                    {"fps": 30, "macro_block_size": 1}
                    if self.path.suffix == ".mp4"
                    else {"duration": 1000 / 30, "loop": 0}
                )
                self.writer = imageio.get_writer(self.path, mode="I", **options)
            self.writer.append_data(annotate_frame(np.asarray(frame), caption))
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def close(self) -> dict[str, str]:
        """Finish the file: ``{"video": file name}`` and/or ``{"video_error": message}``."""
        out = {}
        if self.writer is not None:
            try:
                self.writer.close()
                out["video"] = self.path.name
            except Exception as exc:
                self.error = self.error or f"{type(exc).__name__}: {exc}"
        if self.error is not None:
            out["video_error"] = self.error
        return out
