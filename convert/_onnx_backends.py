"""The ONNX -> TensorFlow backends: onnx2tf (NCHW graphs become NHWC; run offline, on a copy of its input, with
edgeproof's options) and onnx-tf (keeps NCHW; needs the compatibility module), each turning one ONNX file into a
SavedModel. Which graph each gets, in which order, and the checks on what comes out are `_onnx_route`'s."""
from __future__ import annotations

import contextlib
import io
import re
import shutil
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional, Sequence

from edgeproof._spec import Layout, TensorSpec
from edgeproof._util import one_line


class OnnxBackend(str, Enum):
    ONNX2TF = "onnx2tf"
    ONNX_TF = "onnx-tf"


def backends_for(choice: Optional[str]) -> list[OnnxBackend]:
    """`auto` (or None): onnx2tf, then onnx-tf when onnx2tf fails; a backend's name: that one only."""
    if choice in (None, "auto"):
        return [OnnxBackend.ONNX2TF, OnnxBackend.ONNX_TF]
    return [OnnxBackend(choice)]


def onnx2tf_options(native_inputs: Sequence[TensorSpec]) -> dict[str, Any]:
    """onnx2tf turns every 3-D..5-D input channels-last. Only NCHW images should be (as the source model
    takes them, `native_inputs`): the others keep their shape exactly (a [batch, tokens, features] input
    is not an image)."""
    keep = [t.name for t in native_inputs if len(t.shape) >= 3 and not (len(t.shape) == 4 and t.layout is Layout.NCHW)]
    # the pre-pass already simplified the graph, checked; onnx2tf's own unchecked onnxsim run is left out.
    # Grouped convolutions (1 < groups < channels: RegNet, ResNeXt) become one convolution per group: TF.js has no
    # grouped Conv2D ("depth of input (16) must match input depth for filter 8"); depthwise ones stay depthwise.
    return {"not_use_onnxsim": True, "disable_group_convolution": True,
            **({"keep_shape_absolutely_input_names": keep} if keep else {})}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _onnx2tf_reason(printed: str) -> Optional[str]:
    """onnx2tf prints its reason ("LpPool OP is not yet implemented.") before raising something vaguer."""
    lines = [_ANSI.sub("", l).strip() for l in printed.splitlines()]
    errors = [l.split("ERROR:", 1)[1].strip() for l in lines if "ERROR:" in l]
    errors = [e for e in errors if e and not e.startswith("input_onnx_file_path")]
    return errors[0][:300] if errors else None


def onnx_to_saved_model_reported(onnx_path: Path, out_dir: Path, backend: str,
                                 onnx2tf_options: Optional[dict[str, Any]] = None) -> list[str]:
    """onnx_to_saved_model in a worker: onnx2tf's console output captured, its own reason (it prints
    "LpPool OP is not yet implemented." before raising something vaguer) put into the error. Returns notes."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            return onnx_to_saved_model(onnx_path, out_dir, backend, onnx2tf_options).notes
    except (Exception, SystemExit) as err:
        reason = _onnx2tf_reason(printed.getvalue()) if OnnxBackend(backend) is OnnxBackend.ONNX2TF else None
        raise RuntimeError(f"{reason} ({one_line(err, 200)})" if reason else one_line(err)) from None


def _local_test_images():
    """onnx2tf downloads sample images from GitHub to check image models with a static batch; edgeproof runs
    offline, so it gets deterministic local ones (its accuracy check, not ours: ours runs on the probes)."""
    import numpy as np

    return np.random.default_rng(20).uniform(0.0, 1.0, (20, 128, 128, 3)).astype(np.float32)


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
        import tempfile

        import onnx2tf
        import onnx2tf.onnx2tf as onnx2tf_main

        onnx2tf_main.download_test_image_data = _local_test_images  # never the network
        with tempfile.TemporaryDirectory(prefix="edgeproof-onnx2tf-") as tmp:
            own = Path(tmp) / onnx_path.name  # onnx2tf rewrites its input file in place: it gets a copy
            shutil.copyfile(onnx_path, own)
            onnx2tf.convert(input_onnx_file_path=str(own), output_folder_path=str(out_dir), non_verbose=True,
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
