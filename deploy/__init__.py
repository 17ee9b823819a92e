"""edgeproof.deploy: the gate (bundles from passing artifacts only), bundle manifests, the Raspberry Pi
and Android packages, the static browser demo site and the one local HTTP server."""
from ._gate import MANIFEST, DeployResult, DeployTarget, Refusal, bundle_name, deploy
from ._site import SiteError, build_site, serve

__all__ = ["DeployResult", "DeployTarget", "MANIFEST", "Refusal", "SiteError", "build_site", "bundle_name", "deploy",
           "serve"]
