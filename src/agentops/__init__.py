"""agentops: run AI and automation agents from cron, safely.

Agents import what they need from here::

    from agentops import Context
"""

from __future__ import annotations

from agentops.context import Context

__all__ = ["Context", "__version__"]

__version__ = "0.1.0"
