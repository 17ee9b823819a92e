"""Keras' MobileNetV3Small (tf_keras.applications.MobileNetV3Small, weights=None: hard-swish, squeeze-excitation,
its own Rescaling preprocessing layer) at 96x96, 10 classes, with trained-like BatchNorm statistics, converted to
ONNX by tf2onnx at opset 13 (channels-last input, dynamic batch)."""
from __future__ import annotations

from pathlib import Path

from ._build import keras_seeded, onnx_from_keras
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS, OPSET = 96, 48, 13
ARGS = dict(input_shape=(SIZE, SIZE, 3), alpha=0.75, minimalistic=False, weights=None, classes=10,
            include_preprocessing=True, dropout_rate=0.0)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import keras_trained_like_batchnorm

    keras = keras_seeded(13)
    model = keras_trained_like_batchnorm(keras.applications.MobileNetV3Small(**ARGS), seed=13)
    return onnx_from_keras(workdir, model, {"input_1": images(ROWS, SIZE, layout="NHWC", norm="255", start=700)}, OPSET)


ENTRY = CorpusEntry(
    name="keras_mobilenet_v3_small", family=Family.CNN, source=SourceKind.ONNX,
    origin=Origin("tf-keras", "tf_keras.applications.MobileNetV3Small", config=str(ARGS)),
    export=Export("tf2onnx (tf2onnx.convert.from_keras)", OPSET, "batch",
                  "tf2onnx's names (`StatefulPartitionedCall/...:0` style tensors); NHWC input"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, 3 channels, in [0, 255] (the model rescales itself), "
         f"NHWC; no labels",
    build=build)
