"""Typed errors. Every failure names what broke and how to fix it; nothing returns a bare bool."""
from __future__ import annotations

from typing import Optional


class EdgeproofError(Exception):
    """Base class for every error edgeproof raises on purpose."""


class UnknownModelError(EdgeproofError, KeyError):
    """A name that is no reference model (nor, where `user_models` is given, a user model found under
    `artifacts`)."""

    def __init__(self, name: str, known: list[str], user_models: Optional[list[str]] = None,
                 artifacts: Optional[str] = None):
        self.name, self.known = name, known
        self.user_models, self.artifacts = user_models, artifacts
        super().__init__(name)

    def __str__(self) -> str:
        text = f"unknown model {self.name!r}; known models: {', '.join(self.known)}"
        if self.user_models is not None:
            text += f"; your own models under {self.artifacts}: {', '.join(self.user_models) or 'none'}"
        return text


class DatasetNotFoundError(EdgeproofError, FileNotFoundError):
    """A dataset that is neither in the local data directories nor downloadable."""


def _fmt(value) -> str:
    return "not finite" if value is None or value != value else f"{value:.6g}"


class ParityError(EdgeproofError):
    """An artifact whose outputs or task metric fall outside its parity budget."""

    def __init__(self, artifact: str, output: str, measure: str, measured: float, limit: float):
        self.artifact, self.output, self.measure = artifact, output, measure
        self.measured, self.limit = measured, limit
        super().__init__(
            f"{artifact}: output {output!r} fails {measure}: measured {_fmt(measured)}, budget {_fmt(limit)}"
        )


class ArtifactRunError(EdgeproofError):
    """An artifact that could not be loaded or run in its own runtime (corrupt file, bad signature...)."""

    def __init__(self, artifact: str, reason: str):
        self.artifact, self.reason = artifact, reason
        super().__init__(f"{artifact}: could not run in its runtime: {reason}")


class DeployRefusedError(EdgeproofError):
    """deploy asked for an artifact that did not pass verification (or was never verified)."""


# -- bring your own model ---------------------------------------------------------------------------


class UserModelError(EdgeproofError):
    """A user's own model (Keras, ONNX or PyTorch) that cannot be read, run or converted. Raised
    before anything is written, or with the partial output removed."""


class ModelFileNotFoundError(UserModelError, FileNotFoundError):
    """The model, weights or sample-data file does not exist."""


class ModelFormatError(UserModelError, ValueError):
    """The file is not what the option says (an ONNX file given to --keras, a text file...)."""


class CorruptModelError(UserModelError, ValueError):
    """The file has the right kind but cannot be parsed or loaded (truncated, damaged)."""


class CustomLayerError(UserModelError):
    """A Keras model uses a custom layer class that was not registered when loading it."""

    def __init__(self, layer: str, path: str):
        self.layer, self.path = layer, path
        super().__init__(
            f"{path} uses the custom Keras layer {layer!r}, which is not registered: pass the class when loading, "
            f"custom_objects={{{layer!r}: {layer}}} in the Python API (edgeproof.convert.convert_user_model) or "
            f"--keras-custom your_module:{layer} on the command line")


class SampleDataError(UserModelError, ValueError):
    """Sample data (the .npz of inputs and optional labels) that is missing, unreadable, or does not
    match the model's inputs."""


class FactoryError(UserModelError):
    """A PyTorch `module.path:factory` that cannot be imported or called, returns no torch module,
    or whose weights do not fit it."""


class UserConversionError(UserModelError):
    """No converter could turn the user's model into a TensorFlow graph; says what each one reported."""
