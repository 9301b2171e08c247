"""The agent-computer interface: commands on the sandbox PATH and what the host knows of them.

`bin/` and `lib/` are mounted into every sandbox; `docs.py` and `actions.py` run on the host.
"""

from researchgym.tools.actions import ActionError, prepare_action
from researchgym.tools.docs import CommandDoc, command_docs, render_command_docs

__all__ = ["ActionError", "CommandDoc", "command_docs", "prepare_action", "render_command_docs"]
