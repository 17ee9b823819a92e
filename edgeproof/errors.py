"""Typed errors. Every failure names what broke and how to fix it; nothing returns a bare bool."""
from __future__ import annotations


class EdgeproofError(Exception):
    """Base class for every error edgeproof raises on purpose."""


class UnknownModelError(EdgeproofError, KeyError):
    def __init__(self, name: str, known: list[str]):
        self.name, self.known = name, known
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown model {self.name!r}; known models: {', '.join(self.known)}"


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
