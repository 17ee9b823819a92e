"""Where bundles go, and what a deploy run returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Optional

from edgeproof._quant import Target


class DeployTarget(str, Enum):
    WEB = "web"  # TF.js graph models for the browser demo
    PI = "pi"  # .tflite for tflite-runtime / ai-edge-litert on a Raspberry Pi
    ANDROID = "android"  # .tflite for the LiteRT Interpreter, builtin ops only

    @property
    def artifact_target(self) -> Target:
        return Target.TFJS if self is DeployTarget.WEB else Target.TFLITE


@dataclass
class Refusal:
    artifact: str
    reason: str


@dataclass
class DeployResult:
    target: DeployTarget
    out: Path
    bundles: list[Path] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    package: Optional[Path] = None  # pi: the tarball; android: the README with Kotlin; web: the site
    prefer: str = "size"  # which passing artifact index.json names as preferred: "size" or "latency"
