"""The run and trajectory viewer: `researchgym view RUN_DIR` (a local server) or
`researchgym view RUN_DIR --export DIR` (a static bundle that opens without one)."""

from researchgym.viewer.data import RunData
from researchgym.viewer.export import export_bundle
from researchgym.viewer.server import ViewerServer

__all__ = ["RunData", "ViewerServer", "export_bundle"]
