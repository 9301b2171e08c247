"""The agent-computer interface: commands on the sandbox PATH and what the host knows of them.

`bin/` and `lib/` are mounted into every sandbox; `docs.py` and `actions.py` run on the host, as
do the research tools behind the gateway (`gateway.py`, `memory.py`, `literature.py`,
`services.py`), which commands in the network-less sandbox reach over a Unix socket.
"""

from researchgym.tools.actions import ActionError, prepare_action
from researchgym.tools.docs import CommandDoc, available_commands, command_docs, render_command_docs

__all__ = ["ActionError", "CommandDoc", "available_commands", "command_docs", "prepare_action", "render_command_docs"]
