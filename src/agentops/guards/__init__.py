"""The guardrails a run passes: each policy in a module of its own.

Rate limits (:mod:`.rates`), the circuit breaker (:mod:`.breaker`), host and
action permissions (:mod:`.permissions`), retries of transient failures
(:mod:`.retry`, :mod:`.failure`), the timeout and signals
(:mod:`.interrupts`), and one run's guards together (:mod:`.facade`).
"""
