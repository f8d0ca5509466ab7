"""Telling people when an agent needs them (and when it recovers): a policy plus channels.

- :mod:`~agentops.notify.policy`: what is worth telling, and when (the kinds,
  ``[notify] on``, incidents and their cooldown, ``recovered``, the notices
  the store keeps).
- :mod:`~agentops.notify.slow`: when a run that succeeded was ``slow``.
- :mod:`~agentops.notify.channels`: how it reaches people, one
  :class:`~agentops.notify.channels.Channel` per destination, built by the
  factories registered (the webhook and the agent's ping built in).
- :mod:`~agentops.notify.notifier`: :class:`~agentops.notify.notifier.Notifier`,
  the two together, as a run and the watchdog call them.

Nothing here is imported unless a project notifies, and httpx only when
something is sent.
"""
