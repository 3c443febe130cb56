"""Progress of a benchmark run on stderr: a rough forecast first, then a bar for a person at a
terminal or a line per codec for a log, so that a long run is never silent on any stream."""

from __future__ import annotations

import sys
import time
from typing import Literal, TextIO

from tqdm import tqdm

__all__ = ["ProgressMode", "forecast_seconds", "Progress", "progress_mode"]

ProgressMode = Literal["bar", "lines"]

#: Rough cost of one point (encode, decode, PSNR) as (seconds, seconds per megapixel), measured
#: on this project's 2-core CPU at 64x64, 250x250 and 512x512 while other jobs shared it (the
#: per-point cost of the aecodec models, mostly PyTorch's, varied 3x with that load): a guide
#: to within a factor of two or three, not a benchmark. Lines mode rescales it as codecs finish.
_COST: dict[str, tuple[float, float]] = {
    "jpeg": (0.0005, 0.06), "webp": (0.0015, 0.28), "avif": (0.008, 0.95), "jpeg2000": (0.001, 0.41),
    "heif": (0.015, 2.5), "jxl": (0.005, 0.7), "aec:conv": (0.1, 3.0), "aec:": (0.06, 0.5),
}
_UNKNOWN = (0.02, 1.0)  # a codec adapter of the caller's own
_MSSSIM_PER_MP = 0.85  # seconds per megapixel and point


def forecast_seconds(codec: str, megapixels: float, points: int, msssim_megapixels: float = 0.0) -> float:
    """Roughly how long ``points`` points of ``codec`` take on images of ``megapixels`` in all
    (summed over the points), of which ``msssim_megapixels`` also get MS-SSIM."""
    if codec in _COST:
        fixed, per_mp = _COST[codec]
    elif codec.startswith("aec:"):  # the convolutional models, or the light PCA and dense ones
        fixed, per_mp = _COST["aec:conv" if codec.startswith("aec:conv") else "aec:"]
    else:
        fixed, per_mp = _UNKNOWN
    return points * fixed + megapixels * per_mp + msssim_megapixels * _MSSSIM_PER_MP


def progress_mode(stream: TextIO) -> ProgressMode:
    """A bar for a terminal, lines for anything else (a file, a pipe, a CI log)."""
    return "bar" if stream.isatty() else "lines"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """What a run says while it goes: ``start`` once (the forecast), ``point`` after each point,
    ``codec_done`` after each codec, ``close`` at the end. Mode None says nothing."""

    def __init__(self, mode: ProgressMode | None, forecasts: dict[str, float], points: dict[str, int],
                 n_images: int, stream: TextIO | None = None) -> None:
        self.mode = mode
        self.stream = stream if stream is not None else sys.stderr
        self.forecasts, self.points = forecasts, points
        self.n_images = n_images
        self._t0 = time.perf_counter()
        self._done: list[str] = []
        self._bar: tqdm | None = None
        self._codec_t0 = self._t0

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def start(self) -> None:
        if self.mode is None:
            return
        total = sum(self.points.values())
        self._say(f"bench: {len(self.points)} codecs x {self.n_images} images, {total} points; "
                  f"about {_duration(sum(self.forecasts.values()))} (a rough forecast)")
        if self.mode == "bar":
            self._bar = tqdm(total=total, desc="bench", unit="pt", dynamic_ncols=True, file=self.stream)
        self._t0 = self._codec_t0 = time.perf_counter()

    def codec_started(self, codec: str) -> None:
        self._codec_t0 = time.perf_counter()
        if self._bar is not None:
            self._bar.set_postfix_str(codec, refresh=False)

    def point(self) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def codec_done(self, codec: str, measured: int, failed: int) -> None:
        self._done.append(codec)
        if self.mode != "lines":
            return
        now = time.perf_counter()
        spent = now - self._t0
        expected = sum(self.forecasts[c] for c in self._done)
        left = sum(v for c, v in self.forecasts.items() if c not in self._done)
        # The forecast scaled by how this machine has done against it so far.
        left *= spent / expected if expected > 0 else 1.0
        failures = f", {failed} failed" if failed else ""
        tail = f", about {_duration(left)} left" if left > 0 and len(self._done) < len(self.forecasts) else ""
        self._say(f"bench: {codec}: {measured} points in {_duration(now - self._codec_t0)}{failures} "
                  f"({len(self._done)}/{len(self.forecasts)} codecs{tail})")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
