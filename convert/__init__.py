"""edgeproof.convert: Keras -> SavedModel, PyTorch -> ONNX -> SavedModel (onnx2tf or onnx-tf),
then TFLite (fp32, fp16, dynamic-range, full-int8) and TF.js (fp32, fp16, uint8)."""
from ._api import CONVERSION_JSON, artifact_path, conversion_table, convert, load_records, requested_configs
from ._artifact import ArtifactRecord, TensorInfo
from ._byom import UserModelResult, convert_user_model
from ._onnx_backends import OnnxBackend

__all__ = ["ArtifactRecord", "CONVERSION_JSON", "OnnxBackend", "TensorInfo", "UserModelResult", "artifact_path",
           "conversion_table", "convert", "convert_user_model", "load_records", "requested_configs"]
