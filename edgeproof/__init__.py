"""edgeproof: train, convert, quantize and prove models for TFLite and TF.js before they ship.

The public API lives here; internals are in underscore modules. Importing `edgeproof` loads
numpy only: TensorFlow, PyTorch and ONNX are imported lazily by the stages that need them.
"""
from ._quant import QuantConfig, QuantMode, Target, TARGET_MODES, all_configs
from ._registry import all_specs, get_spec, model_names, register, training_order
from ._spec import (
    DEFAULT_BUDGETS,
    Decision,
    Distribution,
    Framework,
    Layout,
    Metric,
    ModelContract,
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
    "DEFAULT_BUDGETS", "DatasetNotFoundError", "Decision", "Distribution", "EdgeproofError", "Framework",
    "Layout", "Metric", "ModelContract", "ModelSpec", "ParityBudget", "ParityError", "Profile", "QuantConfig",
    "QuantMode", "TARGET_MODES", "Target", "Task", "TensorSpec",
    "UnknownModelError", "all_configs", "all_specs", "convert_user_model", "get_spec", "model_names", "register",
    "training_order",
]


def __getattr__(name: str):
    """`edgeproof.convert_user_model` without loading the pipeline (and its stages) at `import edgeproof`."""
    if name == "convert_user_model":
        from .pipeline import convert_user_model

        return convert_user_model
    raise AttributeError(f"module 'edgeproof' has no attribute {name!r}")
