"""``ctx.memory``: working memory kept in the state, and long-term notes in SQLite.

:mod:`.run` is one run's memory, kept like ``ctx.state`` (only when the run
succeeds): :class:`~agentops.memory.run.Memory` is what the agent holds
(``remember``, ``recall``, ``forget``, ``note``, ``relevant``), and
:class:`~agentops.memory.run.RunMemory` the run's side of it (rewind on a
retry, what is kept, the notes written after the state). :mod:`.notes` is the
notes database, searched with FTS5.
"""
