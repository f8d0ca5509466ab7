"""``ctx.llm``: a model client that cannot run away.

- :mod:`.client`: :class:`~.client.LLMClient`, the chain of models
  (fallbacks), structured output and its re-asks, the context window, the
  PII screen, replies truncated or refused;
- :mod:`.completion`: :class:`~.completion.Completion`, what a call returns;
- :mod:`.tools`: the tools of ``ctx.llm.run`` (``@agentops.tool``): a function's
  schema from its signature, how far it reaches, its effect's key;
- :mod:`.providers`: the wire format of each provider ``kind`` (build a
  request, read an error, parse a reply): OpenAI-compatible and Anthropic;
- :mod:`.routes`: which endpoint, wire format, key and prices a model name
  means (``agentops.toml`` ``[providers]`` and ``[models]``), checked before a
  run spends anything;
- :mod:`.tokens`: token estimates that need no download, and pruning;
- :mod:`.cache`: replies reused for the same request (SQLite under ``state/``);
- :mod:`.content`: untrusted text wrapped for a prompt, and the filter for
  secrets and personal data in replies.

Private to the client: ``_send`` (one request: money reserved, sent,
retried, settled), ``_replies`` (this run's replies, then the cache's),
``_prompt`` (the prompt checked, JSON asked for and read) and ``_loop`` (the
tool loop's turns and calls).

Importing this package is cheap; httpx comes with :mod:`.client`, which a
run imports only when an agent first touches ``ctx.llm``.
"""
