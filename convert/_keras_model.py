"""A user's Keras (tf-keras) model: a .keras archive, an .h5 file, a SavedModel folder or a model
object. Loaded with the user's custom objects; an unregistered custom layer is a CustomLayerError
naming the class. The reference is the Keras model itself; `export` writes a SavedModel with one serving signature
with the model's input and output names, int64 inputs taking int32 (cast inside)."""
from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edgeproof._frameworks import import_tf_keras
from edgeproof._spec import TensorSpec
from edgeproof.errors import CorruptModelError, CustomLayerError, ModelFormatError, UserModelError

from ._model_files import require_exists, sniff
from ._saved_model import export_keras
from ._user_inputs import Declared, unique_names

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
_UNKNOWN_CLASS = (r"Unknown (?:layer|object|activation|loss|metric|initializer|regularizer|constraint): '?([\w.]+)'?",
                  r"Cannot deserialize object of type `([\w.]+)`", r"Could not locate (?:class|function) '([\w.]+)'")


def import_custom_objects(specs: Sequence[str]) -> dict[str, Any]:
    """`--keras-custom module.path:ClassName` (repeatable) -> {"ClassName": class}."""
    objects = {}
    for spec in specs or ():
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise UserModelError(f"--keras-custom {spec!r}: expected module.path:ClassName")
        try:
            module = importlib.import_module(module_name)
            objects[attr.split(".")[-1]] = getattr(module, attr)
        except (ImportError, AttributeError) as err:
            raise UserModelError(f"--keras-custom {spec}: cannot import it ({type(err).__name__}: {err})") from None
    return objects


def _check_file(path: Path) -> None:
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ModelFormatError(f"{path} is a folder without saved_model.pb: --keras takes a .keras or .h5 file or "
                                   f"a SavedModel folder")
        return
    found = sniff(path)
    suffix = path.suffix.lower()
    expected = {".keras": "a Keras .keras archive", ".h5": "an HDF5 file (a Keras .h5 model)",
                ".hdf5": "an HDF5 file (a Keras .h5 model)"}.get(suffix)
    if expected is None:
        if found is not None and found[1] == "--keras":
            return  # a Keras file under another name
        what = f"{found[0]}, not a Keras model" if found else "not a Keras model file"
        hint = f"pass it with {found[1]}" if found and found[1].startswith("--") else \
            "--keras takes a .keras or .h5 file or a SavedModel folder"
        raise ModelFormatError(f"{path} is {what}: {hint}")
    if found is not None and found[0] != expected:
        if found[1].startswith("--") and found[1] != "--keras":
            raise ModelFormatError(f"{path} is {found[0]}, not a Keras model: pass it with {found[1]}")
        raise CorruptModelError(f"{path} is {found[0]}, not {expected}: the file is damaged or mislabelled")
    if found is None:
        raise CorruptModelError(f"{path} is not {expected}: the file is damaged or mislabelled")


class KerasModel:
    """A tf-keras model (file or object): declared inputs and outputs, the model itself as the reference."""

    kind = "keras"

    def __init__(self, model: Any, custom_objects: Optional[Mapping[str, Any]] = None):
        if isinstance(model, (str, Path)):  # file checks first: a wrong file fails before TensorFlow loads
            self.path = require_exists(model, "Keras model")
            _check_file(self.path)
            self.model = self._load(self.path, dict(custom_objects or {}))
        else:
            self.model, self.path = model, None
        keras = import_tf_keras()
        if not isinstance(self.model, keras.Model):
            raise ModelFormatError(f"{self.path} did not load as a Keras model (got {type(self.model).__name__})")
        names = list(self.model.input_names)
        self._declared = [Declared(n, s, tuple(t.shape), t.dtype.name)
                          for n, s, t in zip(unique_names(names), names, self.model.inputs)]
        sources = list(self.model.output_names)
        self._outputs = list(zip(unique_names(sources), sources))

    @staticmethod
    def _load(path: Path, custom_objects: dict[str, Any]):
        keras = import_tf_keras()
        try:
            return keras.models.load_model(str(path), custom_objects=custom_objects or None, compile=False)
        except Exception as err:
            text = " ".join(str(err).split())
            for pattern in _UNKNOWN_CLASS:
                m = re.search(pattern, text)
                if m:
                    raise CustomLayerError(m.group(1).split(".")[-1], str(path)) from None
            raise CorruptModelError(f"{path} cannot be loaded by Keras ({type(err).__name__}: {text[:300]}): the file "
                                    f"is damaged, or was saved by an incompatible Keras") from None

    def declared_inputs(self, sample=None) -> list[Declared]:
        return list(self._declared)

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in self._outputs]

    def _call(self, args):
        return self.model(args if len(args) > 1 else args[0], training=False)

    def _as_dict(self, result) -> dict[str, Any]:
        if isinstance(result, Mapping):
            return {n: result[s] for n, s in self._outputs}
        values = list(result) if isinstance(result, (list, tuple)) else [result]
        return {n: v for (n, _), v in zip(self._outputs, values)}

    def reference(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [inputs[d.name] for d in self._declared]
        return {k: np.asarray(v) for k, v in self._as_dict(self._call(args)).items()}

    def save_source(self, dest: Path) -> list[str]:
        if self.path is None:
            self.model.save(str(dest / "source_model.keras"))
            return ["source_model.keras: the Keras model as given (saved from memory)"]
        if self.path.is_dir():
            shutil.copytree(self.path, dest / "source_model")
            return ["source_model/: the Keras SavedModel as given"]
        name = "source_model" + self.path.suffix.lower()
        shutil.copyfile(self.path, dest / name)
        return [f"{name}: the Keras model as given"]

    def export(self, inputs: Sequence[TensorSpec], directory: Path, batch_size: Optional[int] = None,
               unrolled: bool = False) -> Path:
        """One `serving_default` signature: the contract's input names in, the output names out. `unrolled`: GRU
        and SimpleRNN layers unrolled over time where the model can be cloned so (no WHILE loop, no tensor lists:
        what full-integer TFLite needs; LSTM layers stay, TFLite fuses them into its own LSTM op)."""
        model = (unrolled_rnn_clone(self.model) if unrolled else None) or self.model
        return export_keras(model, inputs, self._as_dict, directory, batch_size)


def unrolled_rnn_clone(model: Any) -> Optional[Any]:
    """A clone of `model` with its GRU and SimpleRNN layers unrolled (the same weights); None when it has none or
    cannot be cloned so (a subclassed model, an open time dimension)."""
    keras = import_tf_keras()
    loops = (keras.layers.GRU, keras.layers.SimpleRNN)
    if not any(isinstance(layer, loops) for layer in model.layers):
        return None

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, loops):
            config["unroll"] = True
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone)
        copy.set_weights(model.get_weights())
    except Exception:  # noqa: BLE001 - the loops stay: the export is the same model, only slower to quantize
        return None
    return copy
