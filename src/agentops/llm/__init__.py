"""``ctx.llm``: a model client that cannot run away.

- :mod:`.routes`: which endpoint, key and prices a model name means
  (``agentops.toml`` ``[providers]`` and ``[models]``), checked before a run
  spends anything;
- :mod:`.client`: the calls: retries per call, fallbacks, structured output,
  money reserved before and settled after, the cache, context pruning;
- :mod:`.tokens`: token estimates that need no download, and pruning;
- :mod:`.cache`: replies reused for the same request (SQLite under ``state/``);
- :mod:`.content`: untrusted text wrapped for a prompt, and the filter for
  secrets and personal data in replies.

Importing this package is cheap; httpx comes with :mod:`.client`, which a
run imports only when an agent first touches ``ctx.llm``.
"""
