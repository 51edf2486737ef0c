"""The session's live table and plots (simbeamline.liveplots): redraws paced, pictures
at the end the same as an unpaced BestEffortCallback's. Pure logic with ophyd.sim
devices (no IOC); test_session_tutorials.py runs the session's callback on the beamline."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from bluesky import RunEngine  # noqa: E402
from bluesky.callbacks.best_effort import BestEffortCallback  # noqa: E402
from bluesky.plans import count, grid_scan, scan  # noqa: E402
from ophyd.sim import det, det4, motor, motor1, motor2  # noqa: E402

from simbeamline.liveplots import MAX_RATE, PacedCanvas, SessionCallback  # noqa: E402


def pictures() -> dict:
    """Every open figure: its label -> (per axes: lines' data, images, limits; axes
    positions; pixels). Run uids in titles and legends ("scan 3f2a1c [1]") are masked."""
    out = {}
    for number in plt.get_fignums():
        figure = plt.figure(number)
        for text in figure.findobj(matplotlib.text.Text):
            text.set_text(re.sub(r"\b[0-9a-f]{6}\b", "uid", text.get_text()))
        content = [([(np.asarray(line.get_xdata()).tolist(), np.asarray(line.get_ydata()).tolist())
                     for line in ax.lines],
                    [np.asarray(image.get_array()).tolist() for image in ax.images],
                    ax.get_xlim(), ax.get_ylim()) for ax in figure.axes]
        figure.canvas.draw()
        positions = np.array([ax.get_position().bounds for ax in figure.axes])
        out[figure.get_label()] = (content, positions,
                                   np.asarray(figure.canvas.buffer_rgba()).astype(int))
    return out


PLANS = {
    "scan": lambda: scan([det], motor, -2, 2, 7),
    "grid_scan": lambda: grid_scan([det4], motor1, -1.5, 1.5, 3, motor2, -1.5, 1.5, 4, False),
}


@pytest.mark.parametrize("plan", PLANS)
def test_paced_callback_ends_with_the_unpaced_pictures(plan, capsys):
    plt.close("all")
    RE = RunEngine({})
    RE.subscribe(BestEffortCallback())
    RE(PLANS[plan]())
    expected = pictures()
    plt.close("all")
    assert expected

    RE = RunEngine({})
    bec = SessionCallback()
    RE.subscribe(bec)
    RE(PLANS[plan]())
    got = pictures()
    plt.close("all")
    assert got.keys() == expected.keys()
    for label, (content, positions, pixels) in expected.items():
        assert got[label][0] == content, label          # the same data, limits, images
        # constrained layout settles a little differently after 1 render than after
        # one per event: axes placed the same to a hundredth of a pixel (1000 px figure)
        np.testing.assert_allclose(got[label][1], positions, atol=1e-4, err_msg=label)
        assert np.abs(got[label][2] - pixels).mean() < 0.05, label
    assert [row for row in capsys.readouterr().out.splitlines() if "|" in row]  # the table


def test_figures_off_screen_render_once_at_the_end_of_each_run():
    plt.close("all")
    RE = RunEngine({})
    bec = SessionCallback()
    renders = []

    def during_run(name, doc):
        if name == "event":
            renders.append(sum(p.renders for p in bec._pacers))
    RE.subscribe(bec)
    RE.subscribe(during_run)
    RE(scan([det], motor, -1, 1, 10))
    (pacer,) = bec._pacers
    assert renders == [0] * 10              # nothing rendered while the plan ran
    assert pacer.renders == 1 and not pacer.pending
    RE(scan([det], motor, -1, 1, 10))       # same figure, one more render
    assert pacer.renders == 2 and len(bec._pacers) == 1
    plt.close("all")


def test_figures_on_screen_redraw_at_a_pace_the_plan_can_afford():
    """A clock the test moves: at most MAX_RATE redraws a second, and after a render
    taking R seconds none for 2 R (drawing at most a third of the time)."""
    now = [0.0]
    figure = plt.figure("paced")
    pacer = PacedCanvas(figure.canvas, clock=lambda: now[0])
    pacer.on_screen = True                  # as on a GUI canvas, whose draw_idle renders later
    render = pacer._draw

    def slow_render(*args, **kwargs):
        now[0] += 0.3                       # a render that takes 0.3 s
        return render(*args, **kwargs)
    pacer._draw = slow_render
    pacer._draw_idle = pacer.draw           # stands for the GUI's render on request

    figure.canvas.draw_idle()               # t = 0: drawn, t = 0.3 after
    assert pacer.renders == 1 and now[0] == pytest.approx(0.3)
    for t in (0.4, 0.6, 0.89):              # 2 x 0.3 s must pass after the render
        now[0] = t
        figure.canvas.draw_idle()
        assert pacer.renders == 1 and pacer.pending
    now[0] = 0.91
    figure.canvas.draw_idle()
    assert pacer.renders == 2 and not pacer.pending

    pacer._draw = render                    # a render that takes no time: MAX_RATE rules
    now[0] = 5.0
    figure.canvas.draw_idle()
    renders = pacer.renders
    now[0] += 0.5 / MAX_RATE
    figure.canvas.draw_idle()
    assert pacer.renders == renders and pacer.pending
    pacer.flush()                           # the end of a run: the held-back redraw
    assert pacer.renders == renders + 1 and not pacer.pending
    pacer.flush()
    assert pacer.renders == renders + 1     # nothing pending, nothing drawn
    plt.close("all")


def test_session_callback_is_the_tutorials_bec():
    bec = SessionCallback()
    assert isinstance(bec, BestEffortCallback)
    bec.disable_plots()
    bec.disable_table()
    RE = RunEngine({})
    RE.subscribe(bec)
    RE(count([det], num=2))
    assert not bec._pacers                  # plots disabled: no figure made
