"""ONNX -> TensorFlow SavedModel by onnx2tf (default; NCHW graphs become NHWC) or onnx-tf
(keeps NCHW; needs the compatibility module)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional


class OnnxBackend(str, Enum):
    ONNX2TF = "onnx2tf"
    ONNX_TF = "onnx-tf"


@dataclass
class TfExport:
    saved_model: Path
    backend: OnnxBackend
    notes: list[str] = field(default_factory=list)


def onnx_to_saved_model(onnx_path: Path, out_dir: Path, backend: OnnxBackend | str,
                        onnx2tf_options: Optional[dict[str, Any]] = None) -> TfExport:
    """`onnx2tf_options`: extra keyword arguments for onnx2tf.convert (users' models: which inputs keep
    their layout)."""
    backend = OnnxBackend(backend)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    if backend is OnnxBackend.ONNX2TF:
        import onnx2tf

        onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(out_dir), non_verbose=True,
                        output_signaturedefs=True, copy_onnx_input_output_names_to_tflite=True,
                        **(onnx2tf_options or {}))
        for extra in out_dir.glob("*.tflite"):  # we convert every precision ourselves, from the SavedModel
            extra.unlink()
        return TfExport(out_dir, backend)
    import onnx

    from ._onnx_tf_compat import export_saved_model, prepare

    rep = prepare(onnx.load(str(onnx_path)))
    export_saved_model(rep, str(out_dir))
    return TfExport(out_dir, backend, ["onnx-tf keeps the ONNX (NCHW) layout at the model's edges"])
