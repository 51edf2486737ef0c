"""The two Handling Images notebooks (spot and dot) as written, cell by cell: their
plans with the tutorials' exposures (0.005 s, then 5 s for the grid and the full
197-point spiral) and their data-access calls. Plotting cells are left out (they
read the same data the calls below read).

Used by tests/test_tutorials_time_scale.py and benchmarks/bench_tutorial_speed.py.
"""

from __future__ import annotations

import numpy as np

#: (exposure s, frames) of each notebook's acquisitions, as written.
DOT_EXPOSURES = [(0.005, 1), (0.005, 5), (0.005, 150), (5.0, 197)]
SPOT_EXPOSURES = [(0.005, 1), (0.005, 5), (0.005, 150), (5.0, 25)]


def nominal_seconds(exposures) -> float:
    """The sum of the nominal exposures: the floor of a notebook's wall time at scale 1."""
    return sum(exposure * frames for exposure, frames in exposures)


def dot_notebook(ns) -> dict:
    """Replay the dot notebook; return its headers by the notebook's names."""
    RE, bp, bps, db = ns["RE"], ns["bp"], ns["bps"], ns["db"]
    dot, I, mtr_dotx, mtr_doty = ns["dot"], ns["I"], ns["mtr_dotx"], ns["mtr_doty"]
    RE(bps.mv(dot.exp, .005))
    RE(bps.mv(mtr_dotx, 0, mtr_doty, 0))
    uid, = RE(bp.count([dot, I], num=1))
    h_one = db[uid]
    h_one.table()
    h_one.table(fill=True)
    im = next(h_one.data('dot_img'))
    uid, = RE(bp.count([dot, I], num=5))
    h_few = db[uid]
    im_stack = np.stack(h_few.data('dot_img'))
    for j, im in enumerate(h_few.data('dot_img')):
        im.max()
    uid, = RE(bp.count([dot, I], num=150))
    h_lots = db[uid]
    im_stack = np.stack(h_lots.data('dot_img'))
    im_stack.mean(axis=0)
    out = np.zeros(h_lots.descriptors[0]['data_keys']['dot_img']['shape'])
    j = 0
    for cur, im in zip(h_lots.data('I'), h_lots.data('dot_img')):
        out += im / cur
        j += 1
    out /= j
    RE(bps.mv(dot.exp, 5))
    uid, = RE(bp.spiral_fermat([I, dot], mtr_dotx, mtr_doty, 0, 0, 75, 75, 3, 1))
    h_spiral = db[uid]
    h_spiral.table()
    return dict(h_one=h_one, h_few=h_few, h_lots=h_lots, h_spiral=h_spiral)


def spot_notebook(ns) -> dict:
    """Replay the spot notebook; return its headers by the notebook's names."""
    RE, mv, count, bp, db = ns["RE"], ns["mv"], ns["count"], ns["bp"], ns["db"]
    spot, I, mtr_spotx, mtr_spoty = ns["spot"], ns["I"], ns["mtr_spotx"], ns["mtr_spoty"]
    RE(mv(spot.exp, .005))
    RE(mv(mtr_spotx, 0, mtr_spoty, 0))
    RE(count([spot, I], num=1))
    h = db[-1]
    h.table()
    next(h.data('spot_img'))
    RE(count([spot, I], num=5))
    h_few = db[-1]
    list(h_few.data('spot_img'))
    RE(count([spot, I], num=150))
    h_lots = db[-1]
    out = None
    j = 0
    for event in h_lots.events(fill=True):
        im = event['data']['spot_img']
        cur = event['data']['I']
        out = im / cur if out is None else out + im / cur
        j += 1
    out /= j
    RE(mv(spot.exp, 5))
    grid_uid, = RE(bp.grid_scan([spot, I], mtr_spotx, -100, 100, 5, mtr_spoty, -100, 100, 5,
                                False))
    h_grid = db[grid_uid]
    for event in h_grid.events(fill=True):
        event['data']['spot_img'].min()
    return dict(h=h, h_few=h_few, h_lots=h_lots, h_grid=h_grid)
