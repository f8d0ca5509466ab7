"""The guardrails a run passes: one policy a module, behind one facade.

The policies, each owning its configuration keys, its share of the state,
its check before a run, its records during one, its pruning and its reset
(the seam: :mod:`.base`; the registration, and the entry points the run
calls: :mod:`.policies`):

- :mod:`.permissions`: ``[permissions]`` actions and hosts;
- :mod:`.breaker`: the circuit breaker;
- :mod:`.costs`: ``tokens_per_run`` and the cost windows; spends and reservations;
- :mod:`.rates`: the run rate, per-action rates, ``requests_per_minute``;
- :mod:`.steps`: ``steps_per_run``.

:mod:`.actions` is the exactly-once machinery of guarded actions, which the
policies check; :mod:`.facade` holds one run's guards together
(:class:`~agentops.guards.facade.RunGuards`, what ``ctx`` calls). Beside
them: retries of transient failures (:mod:`.retry`, :mod:`.failure`), and
the timeout and signals (:mod:`.interrupts`).
"""
