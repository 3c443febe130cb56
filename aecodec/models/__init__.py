"""The transforms: PCA, linear/dense autoencoders and the convolutional codec, by stable name."""

from __future__ import annotations

from aecodec.models import conv as _conv  # noqa: F401  (each import registers its models)
from aecodec.models import dense as _dense  # noqa: F401
from aecodec.models import hyper as _hyper  # noqa: F401
from aecodec.models import pca as _pca  # noqa: F401
from aecodec.models import study_conv as _study_conv  # noqa: F401
from aecodec.models.base import CodecModel, ModelInfo, ModelOutput
from aecodec.models.registry import model_class, register_model, registered_names

__all__ = ["CodecModel", "ModelInfo", "ModelOutput", "model_class", "register_model", "registered_names"]
