"""Images through a learned encoder and the adlcodec payload (docs/IMAGE.md).

    from adlcodec.image import encode_image, decode_image
    data = encode_image(gray_uint8_28x28, bits=8)        # bytes of an .adl image
    image = decode_image(data)                           # uint8 again

torch is needed to run the model (``pip install adlcodec[train]``); Pillow for the PNG helpers.
"""

from .codec import CONTAINER_VERSION, decode_file, decode_image, encode_file, encode_image, inspect_image
from .model import DEFAULT_MODEL_PATH, EARLIER_MODELS_DIR, ImageModel, ModelSpec, load_model, shipped_model

__all__ = [
    "CONTAINER_VERSION",
    "DEFAULT_MODEL_PATH",
    "EARLIER_MODELS_DIR",
    "ImageModel",
    "ModelSpec",
    "decode_file",
    "decode_image",
    "encode_file",
    "encode_image",
    "inspect_image",
    "load_model",
    "shipped_model",
]
