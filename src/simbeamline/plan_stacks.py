"""bluesky's "plan was never iterated" warning, at a fraction of its cost.

Every plan stub bluesky decorates with ``@plan`` (``trigger_and_read``, ``one_shot``,
``trigger``, ``read``, ``save``, ...) wraps its generator in ``bluesky.utils.Plan``,
which formats the whole call stack, source lines included, when it is created: so
that if the plan is garbage-collected without a ``yield from``, the warning can say
where it was made. A RunEngine's stack is deep, and a count's event makes several
stubs: measured here, that formatting was a sixth of a session's CPU per event.

:class:`LazyStackPlan` keeps the same warning (the same frames, as bluesky formats
them, and the same last line), but records the frames without their source lines
and formats them only when the warning is given: almost never. It costs about a
fifth of bluesky's Plan at a RunEngine's stack depth.
:func:`install` makes bluesky's ``@plan`` create it (a subclass: ``isinstance(p,
bluesky.utils.Plan)`` holds). The session installs it; ``uninstall`` undoes it.
"""

from __future__ import annotations

import sys
import traceback

import bluesky.utils

_BLUESKY_PLAN = bluesky.utils.Plan


class _CreatedAt:
    """Where a plan was created: each frame's code and line number, formatted (source
    lines and all) only when iterated, that is joined into the warning's text as
    bluesky joins its list of formatted lines."""

    __slots__ = ("frames", "name")

    def __init__(self, frame, name: str):
        frames = []
        while frame is not None:
            frames.append((frame.f_code, frame.f_lineno))
            frame = frame.f_back
        frames.reverse()                # outermost first, as traceback.format_stack
        self.frames = frames
        self.name = name

    def __iter__(self):
        summary = traceback.StackSummary.from_list(
            [(code.co_filename, line, code.co_name, None) for code, line in self.frames])
        yield from summary.format()
        yield (f"RuntimeWarning: plan `{self.name}` was never iterated, did you mean "
               "to use `yield from`?")


class LazyStackPlan(_BLUESKY_PLAN):
    """``bluesky.utils.Plan`` that formats its creation stack only for the warning."""

    __slots__ = ()

    def __init__(self, f, *args, **kwargs) -> None:
        self._iter = f(*args, **kwargs)
        # bluesky leaves out its own two frames (this __init__ and @plan's wrapper)
        self._stack = _CreatedAt(sys._getframe(2), f.__name__)


def install() -> None:
    """Make bluesky's ``@plan`` stubs create :class:`LazyStackPlan` (idempotent)."""
    bluesky.utils.Plan = LazyStackPlan


def uninstall() -> None:
    """Give bluesky its own ``Plan`` back."""
    bluesky.utils.Plan = _BLUESKY_PLAN
