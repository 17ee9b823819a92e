"""Benchmarks: latency, size and accuracy of every deployed artifact, side by side with the source
frameworks, ONNX Runtime, the browser runtimes and the machine's measured limits.

`python -m benchmarks --artifacts DIR` regenerates benchmarks/RESULTS.md, results.json and the charts.
"""
from ._inventory import BenchmarkError

__all__ = ["BenchmarkError"]
