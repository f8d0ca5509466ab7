"""``python -m agentops``: the same as the ``agentops`` command."""

from agentops.cli import main

main(prog_name="agentops")
