"""The run pipeline: one invocation of ``agentops run`` from lock to saved state.

:mod:`.runner` walks one run; :mod:`.session` holds an invocation's lease,
log and store; :mod:`.gatekeeper` is the numbered gates; :mod:`.loader`
imports the agent's code; :mod:`.recovery` folds in what a dead run left;
:mod:`.deadline` ends a run stuck past its timeout; :mod:`.capture` logs what
the agent prints.
"""
