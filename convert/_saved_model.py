"""Models as TensorFlow SavedModels: a Keras model (zoo checkpoint or a user's file) exported with one
`serving_default` signature named after its contract, and any SavedModel (also onnx2tf's and onnx-tf's)
bound to the contract and checked against the source model on the probes before anything is
converted from it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgeproof._frameworks import import_tensorflow
from edgeproof._spec import ModelContract, TensorSpec
from edgeproof._util import scaled_error
from edgeproof.runtime._signature import TensorBinding, bind, from_artifact, to_artifact

from ._tensors import tensor_infos


def export_keras(model: Any, inputs: Sequence[TensorSpec], outputs_of: Callable[[Any], dict], directory: Path,
                 batch_size: Optional[int] = None) -> Path:
    """`model` (tf-keras) as a SavedModel whose signature takes `inputs` by name (batch `batch_size`, None:
    dynamic) and returns `outputs_of(model(...))`, a dict by output name. int64 inputs take int32 ids
    (cast inside): TFLite and TF.js want int32."""
    tf = import_tensorflow()
    signature = {t.name: tf.TensorSpec((batch_size,) + tuple(t.shape[1:]),
                                       tf.int32 if t.dtype == "int64" else tf.as_dtype(t.dtype), name=t.name)
                 for t in inputs}

    @tf.function(input_signature=[signature])
    def serve(feed):
        args = [tf.cast(feed[t.name], tf.int64) if t.dtype == "int64" else feed[t.name] for t in inputs]
        return outputs_of(model(args if len(args) > 1 else args[0], training=False))

    # tf.function with a dict signature exposes the dict's keys as the signature's input names.
    tf.saved_model.save(model, str(directory), signatures={"serving_default": serve.get_concrete_function()})
    return directory


@dataclass
class BoundSavedModel:
    path: Path
    inputs: list[TensorBinding]
    outputs: list[TensorBinding]
    max_abs_error: float  # against the source model on the probes
    errors: dict[str, float] = field(default_factory=dict)  # the same, per output
    # every output within the fp32 artifacts' default budget (PRECISE x its scale): a graph that is not can give no
    # passing fp32 artifact, so the ONNX route looks for a closer one from another backend first
    precise: bool = True

    def feed(self, canonical: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Canonical arrays as the SavedModel (and so the TFLite calibrator) takes them."""
        return {b.name: to_artifact(b, canonical[b.canonical]) for b in self.inputs}


PRECISE = 1e-4  # the fp32 max_abs_error budget per unit of output scale (edgeproof/_spec.py)


class SavedModelMismatch(RuntimeError):
    """The converter's SavedModel does not compute what the source model computes."""


def _describe_signature(fn) -> tuple[list[dict], list[dict]]:
    _, kwargs = fn.structured_input_signature
    ins = [{"name": k, "shape": [-1 if d is None else int(d) for d in s.shape], "dtype": s.dtype.name}
           for k, s in kwargs.items()]
    outs = [{"name": k, "shape": [-1 if d is None else int(d) for d in s.shape], "dtype": s.dtype.name}
            for k, s in fn.structured_outputs.items()]
    return ins, outs


def bind_saved_model(saved_model: Path, contract: ModelContract, probes: dict[str, np.ndarray],
                     reference: dict[str, np.ndarray], prefer: Optional[str] = None) -> BoundSavedModel:
    """Bind the SavedModel's serving signature to the contract and run it on the probes: every output must
    match the source model's (max abs error <= 1e-3 x max(1, |reference|)), so a converter that silently
    produced a wrong graph counts as a failed converter and the next ONNX backend gets its turn."""
    from edgeproof._frameworks import import_tensorflow

    tf = import_tensorflow()
    fn = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    ins, outs = _describe_signature(fn)
    in_infos, out_infos = tensor_infos(ins, contract.inputs, prefer), tensor_infos(outs, contract.outputs, prefer)
    try:
        inputs = bind([(t.name, t.layout.value) for t in contract.inputs], [vars(i) for i in in_infos])
        outputs = bind([(t.name, t.layout.value) for t in contract.outputs], [vars(o) for o in out_infos])
    except ValueError as err:
        raise SavedModelMismatch(f"its signature does not match the source model: {err}") from None
    bound = BoundSavedModel(Path(saved_model), inputs, outputs, 0.0)
    feed = bound.feed(probes)
    n = len(next(iter(feed.values())))
    step = next((b.static_batch for b in inputs if b.static_batch), None) or n
    parts = [fn(**{k: tf.constant(v[i:i + step]) for k, v in feed.items()}) for i in range(0, n, step)]
    worst = 0.0
    for b in outputs:
        got = from_artifact(b, np.concatenate([p[b.name].numpy() for p in parts]))
        ref = np.asarray(reference[b.canonical])
        if got.shape != ref.shape:
            raise SavedModelMismatch(f"output {b.canonical!r} has shape {list(got.shape)}, the source model's "
                                     f"{list(ref.shape)}")
        err, limit = scaled_error(got, ref, 1e-3)
        bound.precise = bound.precise and err <= scaled_error(got, ref, PRECISE)[1]
        if not err <= limit:
            raise SavedModelMismatch(f"output {b.canonical!r} differs from the source model by {err:.3g} on the "
                                     f"probes (allowed {limit:.3g})")
        worst = max(worst, err)
        bound.errors[b.canonical] = err
    bound.max_abs_error = worst
    return bound
