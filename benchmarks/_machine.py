"""The machine and software the numbers were measured on (CPU, cores, SIMD flags, caches, versions, load)."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any, Optional

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
              "avx512_bf16", "amx_int8", "neon", "asimd", "asimddp")
PACKAGES = ("numpy", "ai-edge-litert", "tensorflow", "tf-keras", "torch", "onnxruntime", "onnx", "tensorflowjs",
            "playwright")


def _cpuinfo() -> dict[str, str]:
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return {}
    first = text.split("\n\n")[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines()) if k.strip()}


def _caches() -> dict[str, str]:
    """L1d/L2/L3 sizes from lscpu, when it is there."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    caches = {}
    for line in out.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("L1d cache", "L2 cache", "L3 cache"):
            caches[key.strip().split()[0]] = value.strip()
    return caches


def _version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> Optional[list[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def describe_machine() -> dict[str, Any]:
    info = _cpuinfo()
    flags = set(info.get("flags", info.get("Features", "")).split())
    return {"cpu": info.get("model name") or platform.processor() or platform.machine(),
            "machine": platform.machine(), "logical_cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "simd": [f for f in SIMD_FLAGS if f in flags], "caches": _caches(),
            "hypervisor": "hypervisor" in flags, "os": platform.platform(), "python": platform.python_version(),
            "packages": {p: _version(p) for p in PACKAGES}}
