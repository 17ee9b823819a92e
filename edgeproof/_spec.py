"""ModelSpec: everything the pipeline needs to know about one model, with no TensorFlow or PyTorch.

Train, convert, verify, the runtime, the web demo and the tests all read specs from the registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ._quant import QuantMode, Target, TARGET_MODES


class Task(str, Enum):
    REGRESSION = "regression"
    CLASSIFICATION = "classification"
    BINARY_CLASSIFICATION = "binary_classification"
    GENERATION = "generation"
    TRANSLATION = "translation"
    CUSTOM = "custom"  # raw tensors in, raw tensors out (most users' own models)


class Framework(str, Enum):
    KERAS = "keras"
    TORCH = "torch"


class Layout(str, Enum):
    NHWC = "NHWC"  # images, channels last (Keras, TFLite, TF.js)
    NCHW = "NCHW"  # images, channels first (PyTorch, ONNX)
    NF = "NF"  # batch x features
    NT = "NT"  # batch x tokens (integer ids)


class Distribution(str, Enum):
    """How probe inputs for a tensor are drawn."""

    UNIFORM = "uniform"  # floats in value_range
    NORMAL = "normal"  # standard normal (latent vectors)
    INTEGER = "integer"  # ints in [low, high)


@dataclass(frozen=True)
class TensorSpec:
    """One input or output. `shape` uses None for the batch dimension and is given in `layout`."""

    name: str
    shape: tuple[Optional[int], ...]
    dtype: str
    layout: Layout
    distribution: Distribution = Distribution.UNIFORM
    value_range: tuple[float, float] = (0.0, 1.0)

    def to_layout(self, layout: Layout) -> "TensorSpec":
        """The same tensor in another image layout (NHWC <-> NCHW); other layouts are unchanged."""
        if layout == self.layout or {layout, self.layout} != {Layout.NHWC, Layout.NCHW}:
            return self
        n, a, b, c = self.shape
        shape = (n, c, a, b) if layout is Layout.NCHW else (n, b, c, a)
        return TensorSpec(self.name, shape, self.dtype, layout, self.distribution, self.value_range)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        shape = (n,) + tuple(d for d in self.shape[1:])
        if any(d is None for d in shape):
            raise ValueError(f"{self.name}: cannot draw probes for a shape with unknown dims {self.shape}")
        lo, hi = self.value_range
        if self.distribution is Distribution.INTEGER:
            return rng.integers(int(lo), int(hi), size=shape).astype(self.dtype)
        if self.distribution is Distribution.NORMAL:
            return rng.standard_normal(shape).astype(self.dtype)
        return rng.uniform(lo, hi, size=shape).astype(self.dtype)


@dataclass(frozen=True)
class Metric:
    """The task metric a model is judged by. `unit` is what budgets on it are expressed in."""

    name: str
    higher_is_better: bool
    unit: str


@dataclass(frozen=True)
class ParityBudget:
    """How far an artifact may drift from its reference model before it is refused.

    max_abs_error / min_cosine / min_top1_agreement are checked on the probe inputs;
    max_metric_drop on the whole test split, in the metric's unit (e.g. accuracy points).
    With `scaled` (the default) max_abs_error is per unit of each output's scale (its largest |value| on
    the probes, at least 1) and never below a multiple of the source model's own float noise (see
    edgeproof.verify's budgets); an explicit override (`--budget fp32.max_abs_error=...`) is absolute.
    """

    max_abs_error: float
    min_cosine: float
    max_metric_drop: float
    min_top1_agreement: Optional[float] = None
    scaled: bool = True


# DESIGN.md defaults. fp32 is numerically identical up to float reassociation in the converter.
DEFAULT_BUDGETS: Mapping[QuantMode, ParityBudget] = {
    QuantMode.FP32: ParityBudget(max_abs_error=1e-4, min_cosine=0.99999, max_metric_drop=0.05, min_top1_agreement=1.0),
    QuantMode.FP16: ParityBudget(max_abs_error=1e-2, min_cosine=0.9995, max_metric_drop=0.2, min_top1_agreement=0.98),
    QuantMode.DYNAMIC: ParityBudget(max_abs_error=5e-2, min_cosine=0.995, max_metric_drop=0.5, min_top1_agreement=0.95),
    QuantMode.INT8: ParityBudget(max_abs_error=1e-1, min_cosine=0.99, max_metric_drop=1.0, min_top1_agreement=0.95),
    QuantMode.UINT8: ParityBudget(max_abs_error=1e-1, min_cosine=0.99, max_metric_drop=1.0, min_top1_agreement=0.95),
}


@dataclass(frozen=True)
class Profile:
    """A training configuration. `fast` is for tests (seconds), `default` for the main job, `full` for the bars."""

    epochs: int
    batch_size: int
    train_samples: Optional[int] = None  # None: the whole training split
    test_samples: Optional[int] = None
    learning_rate: float = 1e-3
    extra: Mapping[str, Any] = field(default_factory=dict)


PROFILE_NAMES = ("fast", "default", "full")


class Decision(str, Enum):
    """How an output becomes a decision (for accuracy and top-1 agreement)."""

    ARGMAX = "argmax"  # class scores: the largest one
    THRESHOLD = "threshold"  # one score: above `threshold` or not
    AUTO = "auto"  # argmax for several scores, threshold for one (users' classifiers)
    NONE = "none"  # no decision (regression, generation, raw tensors)


_TASK_DECISIONS = {"classification": Decision.ARGMAX, "translation": Decision.ARGMAX,
                   "binary_classification": Decision.THRESHOLD}


@dataclass(frozen=True)
class ModelContract:
    """What every model has, wherever it came from (a zoo checkpoint, a Keras/ONNX/PyTorch file): its
    tensors and their layouts, its metric, the precisions it may take and the budgets they are judged by.
    Every stage after the Source (convert, verify, report, deploy, the runtime) reads only this."""

    name: str
    task: Task
    description: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metric: Metric
    modes: Mapping[Target, tuple[QuantMode, ...]] = field(default_factory=lambda: dict(TARGET_MODES))
    budgets: Mapping[QuantMode, ParityBudget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    probe_count: int = 16
    probe_fn: Optional[Callable[[int, np.random.Generator], dict[str, np.ndarray]]] = None
    # Batch size of the deployed graphs; None keeps it dynamic. Recurrent models need a static one
    # for TFLite to fuse the LSTM into a builtin op instead of needing Flex tensor-list ops.
    export_batch_size: Optional[int] = None
    # How outputs become decisions; None: from the task (users' classifiers: AUTO with `threshold`).
    decision: Optional[Decision] = None
    threshold: float = 0.5

    def __post_init__(self) -> None:
        for target, modes in self.modes.items():
            bad = [m for m in modes if m not in TARGET_MODES[Target(target)]]
            if bad:
                raise ValueError(f"model {self.name!r}: modes {bad} do not exist for target {target}")
        for modes in self.modes.values():
            for m in modes:
                if m not in self.budgets:
                    raise ValueError(f"model {self.name!r}: no parity budget for mode {m.value!r}")

    @property
    def decision_rule(self) -> Decision:
        if self.decision is not None:
            return self.decision
        return _TASK_DECISIONS.get(self.task.value, Decision.NONE)

    def budget(self, mode: QuantMode | str) -> ParityBudget:
        return self.budgets[QuantMode(mode)]

    def probe_inputs(self, seed: int = 0, n: Optional[int] = None) -> dict[str, np.ndarray]:
        """Fixed, seeded probe inputs in the canonical layout: the same arrays on every machine."""
        n = self.probe_count if n is None else n
        rng = np.random.default_rng(seed)
        if self.probe_fn is not None:
            return self.probe_fn(n, rng)
        return {t.name: t.sample(n, rng) for t in self.inputs}


@dataclass(frozen=True)
class ModelSpec(ModelContract):
    """A model of the zoo: its contract plus the recipe only the zoo has (dataset, profiles, builders,
    quality bar). Registered once; everything else looks it up by name."""

    dataset: str = ""
    profiles: Mapping[str, Profile] = field(default_factory=dict)
    quality_bar: str = ""
    # Per-framework input layout when it differs from the canonical one (PyTorch images are NCHW).
    torch_layout: Optional[Layout] = None
    # Constructor arguments shared by the Keras and PyTorch builders (the checkpoint stores them).
    architecture: Mapping[str, Any] = field(default_factory=dict)
    # Framework -> builder(**architecture) returning an untrained model. Builders import TF / torch
    # lazily, so the registry stays light.
    builders: Mapping[Framework, Callable[..., Any]] = field(default_factory=dict)
    # (raw dataset dict, Profile, seed) -> TaskData: the arrays both frameworks train on, plus the
    # preprocessing a checkpoint and a bundle carry (scales, tokenizers).
    prepare_data: Optional[Callable[..., Any]] = None
    # evaluation result dict -> whether the full-profile quality bar (`quality_bar`) is met.
    quality_check: Optional[Callable[[Mapping[str, Any]], bool]] = None
    # Models that must be trained first (the GAN is judged by mnist_cnn).
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.dataset:
            raise ValueError(f"model {self.name!r}: a zoo model names its dataset")
        missing = [p for p in PROFILE_NAMES if p not in self.profiles]
        if missing:
            raise ValueError(f"model {self.name!r}: profiles {missing} are missing")

    def input_signature(self, framework: Framework | str) -> tuple[TensorSpec, ...]:
        """Inputs as the given framework's model takes them."""
        if Framework(framework) is Framework.TORCH and self.torch_layout is not None:
            return tuple(t.to_layout(self.torch_layout) for t in self.inputs)
        return self.inputs

    def builder(self, framework: Framework | str) -> Callable[..., Any]:
        framework = Framework(framework)
        if framework not in self.builders:
            raise ValueError(f"model {self.name!r} has no {framework.value} builder")
        return self.builders[framework]

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise ValueError(f"unknown profile {name!r}; choose one of {list(PROFILE_NAMES)}") from None
