"""Live table and plots that keep up with the plan: the session's BestEffortCallback.

bluesky's LivePlot and LiveGrid ask for a redraw (``canvas.draw_idle()``) at every
event. On a GUI backend the GUI coalesces those requests, but each render still
runs; on a non-GUI canvas (Agg: scripts, the demo, tests, a notebook's inline
figures) ``draw_idle`` renders the whole figure at once, in the RunEngine's thread,
and a constrained-layout figure of two plots takes longer to render than the spot
camera takes to acquire a frame. The plots then cost several times the plan.

:class:`SessionCallback` is the BestEffortCallback with its figures' redraws paced:

- a figure on a screen (a GUI canvas) is redrawn at most :data:`MAX_RATE` times a
  second, and never more often than leaves :data:`DRAW_SHARE` of the wall time to
  drawing (a figure that takes 0.1 s to render is redrawn at most every 0.3 s), so
  the plan keeps at least two thirds of the time whatever the figure costs;
- a figure on no screen (a non-GUI canvas) is not rendered during the run at all:
  nobody can see it until it is saved or displayed, which renders it anyway;
- at the end of every run each figure with a redraw still pending is drawn once,
  so the pictures at the end are those of an unpaced callback: the same artists
  with the same data (every event is still added to the lines and grids as it
  arrives; only the rendering is paced).
"""

from __future__ import annotations

import time
import weakref
from functools import partial

from bluesky.callbacks.best_effort import BestEffortCallback

#: Most redraws a second of a figure on screen (about what a person can follow).
MAX_RATE = 30.0
#: Largest share of wall time that redrawing one figure may take during a run.
DRAW_SHARE = 1 / 3


class PacedCanvas:
    """Paces ``draw_idle`` on one figure canvas (installed on the canvas object)."""

    def __init__(self, canvas, clock=time.perf_counter):
        self.canvas = canvas
        self.clock = clock
        self.on_screen = getattr(canvas, "required_interactive_framework", None) is not None
        self._draw_idle = canvas.draw_idle          # the backend's own
        self._draw = canvas.draw
        self.pending = False
        self.renders = 0                            # full renders so far
        self.render_seconds = 0.0                   # the last full render's cost
        self.next_allowed = 0.0
        canvas.draw_idle = self.draw_idle
        canvas.draw = self.draw

    @classmethod
    def install(cls, canvas) -> "PacedCanvas":
        """The pacer of *canvas*, installed on first use."""
        pacer = canvas.__dict__.get("_simbeamline_pacer")
        if pacer is None:
            pacer = cls(canvas)
            canvas._simbeamline_pacer = pacer
        return pacer

    def draw(self, *args, **kwargs):
        """A full render (what the backend runs for a redraw), timed."""
        start = self.clock()
        try:
            return self._draw(*args, **kwargs)
        finally:
            self.render_seconds = self.clock() - start
            self.renders += 1
            self.pending = False

    def draw_idle(self, *args, **kwargs):
        """A redraw request: passed on if the pace allows, else remembered."""
        if not self.on_screen or self.clock() < self.next_allowed:
            self.pending = True
            return
        self._draw_idle(*args, **kwargs)
        spacing = self.render_seconds * (1 - DRAW_SHARE) / DRAW_SHARE
        self.next_allowed = self.clock() + max(1 / MAX_RATE, spacing)

    def flush(self) -> None:
        """Draw now if a redraw was held back."""
        if self.pending:
            self.pending = False
            if self.on_screen:
                self._draw_idle()
            else:
                self.draw()
            self.next_allowed = 0.0


def paced_figure(name, pacers: "weakref.WeakSet | None" = None, **kwargs):
    """``plt.figure(name, layout="constrained")`` (BestEffortCallback's figures) with
    its redraws paced; its pacer is added to *pacers*."""
    import matplotlib.pyplot as plt

    figure = plt.figure(name, **{"layout": "constrained", **kwargs})
    pacer = PacedCanvas.install(figure.canvas)
    if pacers is not None:
        pacers.add(pacer)
    return figure


class SessionCallback(BestEffortCallback):
    """BestEffortCallback whose figures redraw at a pace the plan can afford, and
    are brought up to date at the end of each run (see the module's docstring)."""

    def __init__(self, **kwargs):
        self._pacers: weakref.WeakSet = weakref.WeakSet()
        kwargs.setdefault("fig_factory", partial(paced_figure, pacers=self._pacers))
        super().__init__(**kwargs)

    def stop(self, doc):
        try:
            super().stop(doc)
        finally:
            self.flush()

    def flush(self) -> None:
        """Draw every figure of this callback that has a redraw pending."""
        for pacer in list(self._pacers):
            pacer.flush()
