"""The run pipeline: one invocation of ``agentops run`` from lock to saved state.

:mod:`.runner` walks one run, linearly, over a :class:`~agentops.run.run.Run`
(:mod:`.run`: the spec, state, interrupts, journal, guards and ``ctx`` of one
run, and what backs ``ctx``). Around it:

- :mod:`.options`: what a caller may vary (:class:`~agentops.run.options.RunOptions`);
- :mod:`.services`: the bundle an invocation runs with (log, redactor, clock, store...);
- :mod:`.invocation`: the lease, the log, the output capture, the attempt's
  trace and the notification after it; turns errors into outcomes;
- :mod:`.gatekeeper`: the numbered gates; :mod:`.loader` imports the agent's code;
- :mod:`.ending`: a finished run recorded in the state; :mod:`.commit`: what
  a run keeps, committed in order (state and ledger, then notes);
- :mod:`.recovery` folds in what a dead run left; :mod:`.deadline` ends a run
  stuck past its timeout; :mod:`.dryrun` is a dry run's journal;
  :mod:`.capture` logs what the agent prints.
"""
