"""edgeproof.deploy: the gate (bundles from passing artifacts only, for reference and users' models alike),
bundle manifests, the Raspberry Pi and Android packages, the static browser demo site and the one local
HTTP server."""
from ._bundle import MANIFEST, bundle_name
from ._gate import deploy
from ._site import SiteError, build_site, serve
from ._targets import DeployResult, DeployTarget, Refusal

__all__ = ["DeployResult", "DeployTarget", "MANIFEST", "Refusal", "SiteError", "build_site", "bundle_name", "deploy",
           "serve"]
