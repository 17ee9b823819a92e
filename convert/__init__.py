"""edgeproof.convert: Sources (a zoo checkpoint, a user's Keras / ONNX / PyTorch model) -> TensorFlow
SavedModel (Keras directly; PyTorch and ONNX through the ONNX route: onnx2tf, else onnx-tf) -> TFLite
(fp32, fp16, dynamic-range, full-int8) and TF.js (fp32, fp16, uint8), every cell in conversion.json.
The model locator (find_models) finds reference and user models alike under an artifacts folder."""
from ._api import convert, convert_source
from ._artifact import ArtifactRecord, TensorInfo
from ._keras_model import import_custom_objects
from ._locator import ModelFolder, find_models
from ._onnx_backends import OnnxBackend
from ._records import CONVERSION_JSON, artifact_path, conversion_table, load_records, requested_configs
from ._source import EvalSet, Exported, Source, SourceKind
from ._source_user import UserSource, open_user_source
from ._source_zoo import ZooSource

__all__ = ["ArtifactRecord", "CONVERSION_JSON", "EvalSet", "Exported", "ModelFolder", "OnnxBackend", "Source",
           "SourceKind", "TensorInfo", "UserSource", "ZooSource", "artifact_path", "conversion_table", "convert",
           "convert_source", "find_models", "import_custom_objects", "load_records", "open_user_source",
           "requested_configs"]
