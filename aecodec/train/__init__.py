"""Training: datasets (LFW archive, image folders), the loop, checkpoints, DDP."""

from __future__ import annotations

from aecodec.train.config import TrainConfig
from aecodec.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
