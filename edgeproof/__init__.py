"""edgeproof: train, convert, quantize and prove models for TFLite and TF.js before they ship.

The public API lives here; internals are in underscore modules. Importing `edgeproof` loads
numpy only: TensorFlow, PyTorch and ONNX are imported lazily by the stages that need them.
"""
from ._quant import QuantConfig, QuantMode, Target, TARGET_MODES, all_configs
from ._registry import all_specs, get_spec, model_names, register, training_order
from ._spec import (
    DEFAULT_BUDGETS,
    Distribution,
    Framework,
    Layout,
    Metric,
    ModelSpec,
    ParityBudget,
    Profile,
    Task,
    TensorSpec,
)
from .errors import (
    DatasetNotFoundError,
    EdgeproofError,
    ParityError,
    UnknownModelError,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BUDGETS", "DatasetNotFoundError", "Distribution", "EdgeproofError", "Framework",
    "Layout", "Metric", "ModelSpec", "ParityBudget", "ParityError", "Profile", "QuantConfig",
    "QuantMode", "TARGET_MODES", "Target", "Task", "TensorSpec",
    "UnknownModelError", "all_configs", "all_specs", "get_spec", "model_names", "register", "training_order",
]
