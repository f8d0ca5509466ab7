"""``ctx.memory``: working memory kept in the state, and long-term notes in SQLite.

:mod:`.run` is one run's memory, kept like ``ctx.state`` (only when the run
succeeds); :mod:`.notes` is the notes database, searched with FTS5.
"""
