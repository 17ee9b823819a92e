"""Conversion targets and quantization modes: one enum each and a small config dataclass."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Target(str, Enum):
    """Artifact formats the pipeline produces."""

    TFLITE = "tflite"
    TFJS = "tfjs"


class QuantMode(str, Enum):
    """Numeric precision of a converted artifact."""

    FP32 = "fp32"
    FP16 = "fp16"
    DYNAMIC = "dynamic"  # TFLite dynamic-range: int8 weights, float activations
    INT8 = "int8"  # TFLite full-integer, calibrated on a representative dataset
    UINT8 = "uint8"  # TF.js weight quantization to 8 bits


TARGET_MODES: dict[Target, tuple[QuantMode, ...]] = {
    Target.TFLITE: (QuantMode.FP32, QuantMode.FP16, QuantMode.DYNAMIC, QuantMode.INT8),
    Target.TFJS: (QuantMode.FP32, QuantMode.FP16, QuantMode.UINT8),
}


@dataclass(frozen=True)
class QuantConfig:
    """One conversion: a target, a mode, and the knobs that mode takes."""

    target: Target
    mode: QuantMode
    representative_samples: int = 256  # int8 calibration set size, drawn from the training split
    int8_io: bool = False  # full-int8 only: make the model's inputs/outputs int8 too

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", Target(self.target))
        object.__setattr__(self, "mode", QuantMode(self.mode))
        allowed = TARGET_MODES[self.target]
        if self.mode not in allowed:
            raise ValueError(
                f"mode {self.mode.value!r} does not exist for target {self.target.value!r}; "
                f"choose one of {[m.value for m in allowed]}"
            )
        if self.int8_io and self.mode is not QuantMode.INT8:
            raise ValueError("int8_io only applies to full-integer int8 TFLite conversion (mode 'int8')")
        if self.representative_samples < 1:
            raise ValueError("representative_samples must be at least 1")

    @property
    def key(self) -> str:
        """Stable artifact key, e.g. 'tflite/int8'."""
        return f"{self.target.value}/{self.mode.value}"


def all_configs() -> tuple[QuantConfig, ...]:
    """Every (target, mode) pair of the conversion matrix with default knobs."""
    return tuple(QuantConfig(t, m) for t, modes in TARGET_MODES.items() for m in modes)
