"""Export: SavedModels that TF Serving runs as is, LiteRT files, BatchNorm folding.

`saved_model(model, base, class_names)` writes `<base>/<model name>/<version>/`, the layout
TF Serving watches, with two signatures that both take *raw* images and run the data
pipeline's evaluation transform in the graph (so serving sees exactly the pixels
evaluation saw):

    serving_default   images: string [batch]  encoded JPEG / PNG / GIF / BMP / WebP
                      (REST clients send {"b64": "..."})
    predict_images    images: uint8 [batch, height, width, 3], any height and width

and both return `probabilities` (float32 [batch, classes]), `top_k_scores`,
`top_k_indices` and `top_k_labels` (class names). The SavedModel needs neither Python nor
kerasarch to run, and stores each weight once.

Input guards in the string signature: empty input, unknown formats, images whose *header*
claims more than `max_pixels` (checked before anything is decoded) or a zero size, and
truncated JPEG / PNG / WebP data are refused with an `InvalidArgumentError` that says what
was wrong and which image of the batch it was ("image 3 of 4: ..."); other corrupt data
fails in the decoder with its own message. Every image becomes 3-channel uint8
(grayscale, RGBA, CMYK, 16-bit and palette images included; GIFs give their first frame).

`onnx(model, path)` and `openvino(model, path)` write the model's forward pass (float32
pixels in [0, 255] in, normalization in the graph) for ONNX Runtime and OpenVINO; they need
the `runtimes` extra (`onnx_session` / `openvino_model` run the files).

Modules: `serving` (the signatures, guarded decoding), `headers` (format, size and
truncation from the bytes), `litert`, `onnx`, `openvino`, `fold` (`fold_batchnorm`,
`FoldedBatchNorm`). The functions `litert`, `onnx` and `openvino` shadow their modules'
names here; reach a module through `importlib.import_module("kerasarch.export.litert")`.
"""

from kerasarch.export.fold import FoldedBatchNorm, fold_batchnorm
from kerasarch.export.headers import FORMATS, header_size, truncated
from kerasarch.export.litert import FLATBUFFER_LIMIT, QUANTIZATIONS, litert
from kerasarch.export.onnx import onnx, onnx_session
from kerasarch.export.openvino import openvino, openvino_model
from kerasarch.export.serving import DEFAULT_MAX_PIXELS, guarded_decode, new_archive, saved_model

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FLATBUFFER_LIMIT",
    "FORMATS",
    "QUANTIZATIONS",
    "FoldedBatchNorm",
    "fold_batchnorm",
    "guarded_decode",
    "header_size",
    "litert",
    "new_archive",
    "onnx",
    "onnx_session",
    "openvino",
    "openvino_model",
    "saved_model",
    "truncated",
]
