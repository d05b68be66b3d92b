"""Video stills: a few evenly spaced frames of an MP4/GIF side by side, as one small PNG.

Videos are decoded with PyAV (it bundles FFmpeg, as :mod:`robodistill.media` does when
writing), so no system FFmpeg is needed; a video that cannot be read yields no still.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEIGHT = 128
"""Pixel height of a still: enough to see the scene, small enough to embed several."""


def read_frames(path: Path, limit: int = 2000) -> list[np.ndarray]:
    """Up to ``limit`` decoded (H, W, 3) uint8 RGB frames of ``path``."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= limit:
                break
    return frames


def strip(frames: list[np.ndarray], count: int = 4, height: int = HEIGHT) -> np.ndarray:
    """``count`` evenly spaced frames (first and last included), resized to ``height``, side by
    side with a thin white gap: (height, ~count * width, 3) uint8."""
    import cv2

    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    tiles = []
    for i in picks:
        h, w = frames[i].shape[:2]
        tiles.append(cv2.resize(frames[i], (max(1, round(w * height / h)), height)))
        tiles.append(np.full((height, 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)


def still_png(path: Path, count: int = 4) -> bytes | None:
    """A PNG strip of ``count`` frames of the video at ``path``, or None if it is unreadable."""
    import cv2

    try:
        frames = read_frames(path)
    except Exception:  # noqa: BLE001  (any decoding failure just means: no still)
        return None
    if not frames:
        return None
    ok, png = cv2.imencode(".png", cv2.cvtColor(strip(frames, count), cv2.COLOR_RGB2BGR))
    return png.tobytes() if ok else None
