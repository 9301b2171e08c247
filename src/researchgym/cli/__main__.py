"""`python -m researchgym.cli`: the command line."""

import sys

from researchgym.cli import app

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
