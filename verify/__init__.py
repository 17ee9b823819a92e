"""edgeproof.verify: every artifact run in its own runtime and proven against its source model."""
from ._api import ModelVerification, NotConvertedError, Reference, load_verdicts, verify
from ._verdict import ArtifactVerdict, Failure, Status, check_budget

__all__ = ["ArtifactVerdict", "Failure", "ModelVerification", "NotConvertedError", "Reference", "Status",
           "check_budget", "load_verdicts", "verify"]
