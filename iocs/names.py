"""PV-name rules shared by the IOCs and the command line, in plain Python.

Kept apart from :mod:`.server` so a client can apply exactly the IOCs' rule without
importing caproto (which imports numpy): the command line checks ``--prefix`` with it.
"""

from __future__ import annotations

#: Characters of a PV prefix: those EPICS allows in record names (letters, digits,
#: _ - + : [ ] < > ; and, since Base 3.14.12, { } as NSLS-II names use them), and '.'.
_PREFIX_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+:.[]<>;{}")


def check_prefix(prefix: str) -> str:
    """Return *prefix* or raise ValueError naming what is wrong with it."""
    if not prefix or not set(prefix) <= _PREFIX_CHARS:
        raise ValueError(
            f"prefix {prefix!r} is not a valid PV prefix: use letters, digits and "
            "_ - + : . [ ] < > ; { } only, for example 'sim:' or 'XF:31IDA-BI{Cam:Tbl}'"
        )
    return prefix
