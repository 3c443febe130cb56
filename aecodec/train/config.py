"""The training configuration: one dataclass, also readable from and writable to a JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aecodec.errors import AecError, AecInputError

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in every checkpoint and weight card.

    Data: ``lfw`` (an ``lfw.tgz``-layout archive; the train people of the person split) and/or
    ``folders`` (image files or folders). ``face_size`` crops LFW faces to a fixed size (for the
    fixed-size models). ``hflip`` False turns off the random horizontal flips (for aligned data
    whose test images are never mirrored). Variants: ``code_l2`` (regularized: L2 penalty on
    the code) and ``denoise_sigma`` (denoising: Gaussian noise with σ drawn from [0, denoise_sigma] on the
    input, clean target; with ``denoise_fixed``, σ = denoise_sigma exactly, as in the study).
    """

    name: str = "model"
    model: str = "conv"
    model_config: dict[str, Any] = field(default_factory=dict)
    lfw: str | None = None
    lfw_limit: int | None = None
    folders: list[str] = field(default_factory=list)
    face_size: int | None = None
    tile: int = 256
    crop: int = 192
    hflip: bool = True
    batch: int = 16
    steps: int = 20000
    time_budget_s: float | None = None
    lr: float = 1e-4
    lr_decay_at: float = 0.85
    fast_lr_scale: float = 10.0
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    code_l2: float = 0.0
    denoise_sigma: float = 0.0
    denoise_fixed: bool = False
    checkpoint: str = "checkpoints/model.ckpt"
    checkpoint_every: int = 500
    log_every: int = 0
    out: str | None = None
    init_weights: str | None = None  # start from these weights (fine-tuning) instead of random

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        """The config in ``path`` with ``overrides`` applied (an override of None sets None:
        ``out=None`` means no weight file)."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise AecInputError(f"cannot read training config {path}: {exc}") from None
        return cls.from_dict({**data, **overrides})

    @classmethod
    def from_installed(cls, model: str, **overrides: Any) -> "TrainConfig":
        """The config an installed model was trained with (its weight card records it), made
        portable: no data (give ``lfw`` or ``folders``), no time budget, weights and
        checkpoint in the current folder as ``<family>.pt`` and ``<family>.ckpt``, and a
        fine-tune starts from the installed weights it started from. Then ``overrides``."""
        from aecodec.versions import split_version
        from aecodec.weights import load_shipped, shipped_dir, shipped_names
        try:
            lm = load_shipped(model)
        except AecError:
            raise AecInputError(f"{model}: neither a training config file nor an installed model "
                                f"(see `aecodec models`)") from None
        recorded = lm.card.get("train_config")
        if not isinstance(recorded, dict):
            raise AecInputError(f"{model}: the weight card of {lm.name} records no training config")
        family = split_version(lm.name)[0]
        start = Path(str(recorded.get("init_weights") or "")).stem
        init = str(shipped_dir() / f"{start}.pt") if start in shipped_names() else None
        known = {f.name for f in fields(cls)}  # a card of an older aecodec may have other keys
        portable = {**{k: v for k, v in recorded.items() if k in known}, "lfw": None, "folders": [], "time_budget_s": None, "init_weights": init,
                    "out": f"{family}.pt", "checkpoint": f"{family}.ckpt"}
        return cls.from_dict({**portable, **overrides})

    def check_data(self) -> None:
        """Raise AecInputError, before any work, if no training data is named or what is named
        is not there."""
        if not self.lfw and not self.folders:
            raise AecInputError("no training data: give image folders (--images PATH; photos at least "
                                f"{self.tile} px a side) or an LFW archive (--lfw lfw.tgz)")
        if self.lfw and not Path(self.lfw).is_file():
            raise AecInputError(f"{self.lfw}: no such LFW archive (give --lfw PATH)")
        for folder in self.folders:
            if not Path(folder).exists():
                raise AecInputError(f"{folder}: no such image file or folder (give --images PATH)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise AecInputError(f"unknown training config keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")
