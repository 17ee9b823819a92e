"""edgeproof.verify: every artifact run in its own runtime and proven against its source model (any
Source: a zoo checkpoint or a user's model), verdicts in parity.json, reports and plots."""
from ._api import ModelVerification, NotConvertedError, Reference, load_verdicts, verify, verify_source
from ._model_report import write_model_report
from ._parallel import VerifyOptions, verify_folder, verify_models
from ._report import write_report
from ._verdict import ArtifactVerdict, Failure, Status, check_budget

__all__ = ["ArtifactVerdict", "Failure", "ModelVerification", "NotConvertedError", "Reference", "Status",
           "VerifyOptions", "check_budget", "load_verdicts", "verify", "verify_folder", "verify_models",
           "verify_source", "write_model_report", "write_report"]
