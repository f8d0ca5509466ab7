"""A cron schedule as a CronJob's ``spec.schedule``, refused where Kubernetes reads it otherwise."""

from __future__ import annotations

from agentops.errors import ConfigError

_REBOOT = "@reboot"


def kubernetes_schedule(expr: str, *, agent: str) -> str:
    """``expr`` as ``spec.schedule``, if Kubernetes runs it when cron would.

    Kubernetes takes cron's macros but ``@reboot``, and reads five fields as
    robfig/cron does, which differs from Debian's cron in two ways that are
    refused (:class:`ConfigError`, naming the agent): 7 is not Sunday, and
    day-of-month and day-of-week restricted together are ORed unless one is
    ``*`` (cron: unless one starts with ``*``, so ``*/2`` ANDs).
    """
    if expr == _REBOOT:
        raise ConfigError(
            f"{agent}: schedule '@reboot' has no Kubernetes equivalent (a CronJob starts runs "
            "by the clock, not when a machine boots): give it a clock schedule, or no schedule",
            agent=agent,
        )
    if expr.startswith("@"):
        return expr
    _minute, _hour, dom, _month, dow = expr.split()
    for element in dow.split(","):
        if any(bound.isdigit() and int(bound) == 7 for bound in _bounds(element)):  # noqa: PLR2004
            raise ConfigError(
                f"{agent}: schedule {expr!r} uses 7 for Sunday, which Kubernetes refuses: "
                "write 0 or sun",
                agent=agent,
            )
    cron_and = dom.startswith("*") or dow.startswith("*")
    kubernetes_and = _robfig_star(dom) or _robfig_star(dow)
    if cron_and != kubernetes_and:
        both, either = "days matching both fields", "days matching either"
        raise ConfigError(
            f"{agent}: schedule {expr!r} picks other days in Kubernetes than in cron, which "
            f"runs it on {both if cron_and else either} of day-of-month and day-of-week; "
            f"Kubernetes on {either if cron_and else both} (to it, '*/N' restricts the days)",
            agent=agent,
        )
    return expr


def _bounds(element: str) -> list[str]:
    """The values a range element names (``5-7/2`` -> 5 and 7), its step left out."""
    return element.split("/", maxsplit=1)[0].split("-")


def _robfig_star(field: str) -> bool:
    # robfig/cron marks a field "any" only for an element of * with no step above 1.
    for element in field.split(","):
        values, _, step = element.partition("/")
        if values == "*" and (not step or int(step) <= 1):
            return True
    return False
