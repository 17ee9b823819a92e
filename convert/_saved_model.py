"""Keras model -> SavedModel with one `serving_default` signature named after the ModelSpec
(inputs and outputs keep the spec's names; the batch dimension stays dynamic)."""
from __future__ import annotations

from pathlib import Path

from edgeproof._frameworks import import_tensorflow
from edgeproof._spec import ModelSpec


_SPEC = object()


def export_keras_saved_model(spec: ModelSpec, model, directory: Path, batch_size=_SPEC) -> Path:
    """`batch_size`: the spec's export batch by default; None for a dynamic batch."""
    tf = import_tensorflow()
    net = model[0] if isinstance(model, tuple) else model  # the GAN deploys its generator
    batch = spec.export_batch_size if batch_size is _SPEC else batch_size
    input_specs = {t.name: tf.TensorSpec((batch,) + tuple(t.shape[1:]), t.dtype, name=t.name) for t in spec.inputs}
    names = [t.name for t in spec.inputs]
    output_name = spec.outputs[0].name

    @tf.function(input_signature=[input_specs])
    def serve(inputs):
        args = [inputs[n] for n in names]
        return {output_name: net(args if len(args) > 1 else args[0], training=False)}

    # tf.function with a dict signature exposes the dict's keys as the signature's input names.
    tf.saved_model.save(net, str(directory), signatures={"serving_default": serve.get_concrete_function()})
    return directory
