"""The calls of the "Handling Images" tutorials (spot and dot), against the live IOCs,
in a session built as the profile builds it, on a temporary catalog.

Exposures are shorter than the tutorials' 5 s where only the shape of the data
matters; the low-exposure steps use the tutorials' 0.005 s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from session_support import new_session, private_config

pytestmark = pytest.mark.timeout(600)

SHAPE = (480, 640)


@pytest.fixture(scope="module")
def ns(beamline, tmp_path_factory):
    session = new_session(private_config(beamline, tmp_path_factory.mktemp("tutorial-data")))
    RE, mv = session["RE"], session["mv"]
    RE(mv(session["shutter"], "Open"))
    RE(mv(session["mtr_spotx"], 0, session["mtr_spoty"], 0,
          session["mtr_dotx"], 0, session["mtr_doty"], 0))
    yield session
    RE(mv(session["mtr_spotx"], 0, session["mtr_spoty"], 0,
          session["mtr_dotx"], 0, session["mtr_doty"], 0))


@pytest.fixture(scope="module")
def h_one(ns):
    RE, mv, spot, I = ns["RE"], ns["mv"], ns["spot"], ns["I"]
    RE(mv(spot.exp, .005))
    RE(ns["count"]([spot, I], num=1))
    return ns["db"][-1]


@pytest.fixture(scope="module")
def h_few(ns):
    RE, bp, bps, dot, I = ns["RE"], ns["bp"], ns["bps"], ns["dot"], ns["I"]
    RE(bps.mv(dot.exp, .005))
    uid, = RE(bp.count([dot, I], num=5))
    return ns["db"][uid]


def test_namespace_has_what_the_tutorials_use(ns):
    for name in ("RE", "bec", "db", "cat", "spot", "dot", "I", "mtr_spotx", "mtr_spoty",
                 "mtr_dotx", "mtr_doty", "mtr_samx", "mtr_samy", "shutter", "bp", "bps",
                 "mv", "count", "np", "plt"):
        assert name in ns, name
    assert ns["mtr_spotx"].name == "motor_spotx"
    assert ns["cat"].__wrapped__ is ns["db"].v2   # both opened on first use


def test_exposure_is_configuration_and_sum_is_hinted(ns):
    spot = ns["spot"]
    ns["RE"](ns["mv"](spot.exp, 0.005))
    assert spot.read_configuration()["spot_exp"]["value"] == pytest.approx(0.005)
    assert spot.hints == {"fields": ["spot_sum"]}
    assert set(spot.describe()) == {"spot_img", "spot_sum"}


def test_I_kind_normal_takes_it_out_of_the_hints(ns):
    I = ns["I"]
    assert I.hints == {"fields": ["I"]}
    I.kind = "normal"
    try:
        assert I.hints == {"fields": []}
    finally:
        I.kind = "hinted"


def test_table_shows_datum_ids_and_fills(h_one):
    table = h_one.table()
    datum_id = table["spot_img"][1]
    assert isinstance(datum_id, str) and "/" in datum_id
    assert table["I"][1] > 0
    filled = h_one.table(fill=True)["spot_img"][1]
    assert filled.shape == SHAPE


def test_descriptor_data_key_is_external_with_the_frame_shape(h_one):
    key = h_one.descriptors[0]["data_keys"]["spot_img"]
    assert tuple(key["shape"]) == SHAPE
    assert key["external"] == "FILESTORE:"
    assert key["dtype"] == "array"


def test_next_and_single_unpacking(h_one):
    im = next(h_one.data("spot_img"))
    assert im.shape == SHAPE
    im2, = h_one.data("spot_img")
    np.testing.assert_array_equal(im, im2)
    # low exposure, dead centre: the spot (peak ~ 200 * 0.005 * I counts) sits on
    # a Poisson background of mean 1000
    assert 900 < np.median(im) < 1100
    assert im[215:265, 270:370].mean() > im[:50, :50].mean() + 100


def test_list_stack_and_star_unpacking(h_few):
    im_list = list(h_few.data("dot_img"))
    im_stack = np.stack(h_few.data("dot_img"))
    im1, *rest = h_few.data("dot_img")
    assert len(im_list) == 5 and len(rest) == 4
    assert im_stack.shape == (5, *SHAPE)
    np.testing.assert_array_equal(im_stack[0], im1)
    np.testing.assert_array_equal(im_stack[-1], im_list[-1])
    assert np.vstack(h_few.data("dot_img")).shape == (5 * SHAPE[0], SHAPE[1])


def test_for_loop_and_frames_differ(h_few):
    maxima = [im.max() for j, im in enumerate(h_few.data("dot_img"))]
    assert len(maxima) == 5
    frames = list(h_few.data("dot_img"))
    assert not np.array_equal(frames[0], frames[1]), "each trigger must give a new frame"


def test_zip_and_events_give_the_same_normalised_mean(h_few):
    shape = h_few.descriptors[0]["data_keys"]["dot_img"]["shape"]
    out = np.zeros(shape)
    j = 0
    for cur, im in zip(h_few.data("I"), h_few.data("dot_img")):
        out += im / cur
        j += 1
    out /= j
    out2 = np.zeros((480, 640))
    k = 0
    for event in h_few.events(fill=True):
        out2 += event["data"]["dot_img"] / event["data"]["I"]
        k += 1
    out2 /= k
    assert j == k == 5
    np.testing.assert_allclose(out, out2)


def test_v2_primary_read(ns, h_few):
    data = ns["cat"][h_few.start["uid"]].primary.read()
    assert data["dot_img"].shape == (5, *SHAPE)
    np.testing.assert_array_equal(data["dot_img"][2].values, list(h_few.data("dot_img"))[2])


def test_grid_scan_moves_the_spot(ns):
    RE, bp, spot, I = ns["RE"], ns["bp"], ns["spot"], ns["I"]
    RE(ns["mv"](spot.exp, 0.01))
    grid_uid, = RE(bp.grid_scan([spot, I], ns["mtr_spotx"], -100, 100, 5,
                                ns["mtr_spoty"], -100, 100, 5, False))
    h_grid = ns["db"][grid_uid]
    sums = {}
    for event in h_grid.events(fill=True):
        data = event["data"]
        assert data["spot_img"].shape == SHAPE
        # the frame file and the sum are the same frame's (both arrive as monitors)
        assert data["spot_img"].sum() == data["spot_sum"]
        sums[(round(data["motor_spotx"]), round(data["motor_spoty"]))] = data["spot_sum"]
    assert len(sums) == 25
    assert max(sums, key=sums.get) == (0, 0)  # brightest at the centre


def test_spiral_fermat_and_tricontour_data(ns):
    RE, bp, bps, dot, I = ns["RE"], ns["bp"], ns["bps"], ns["dot"], ns["I"]
    RE(bps.mv(dot.exp, 0.01))
    uid, = RE(bp.spiral_fermat([I, dot], ns["mtr_dotx"], ns["mtr_doty"], 0, 0, 75, 75, 15, 1))
    h_spiral = ns["db"][uid]
    ret = []
    for ev in h_spiral.events(fill=True):
        data = ev["data"]
        im = data["dot_img"]
        ret.append({"x": data["motor_dotx"], "y": data["motor_doty"],
                    "c": np.mean(im[im > 1000]) / data["I"]})
    df = pd.DataFrame(ret)
    assert len(df) == len(list(h_spiral.data("I"))) >= 5
    assert np.isfinite(df["c"]).all()
    centre = df.loc[(df["x"] ** 2 + df["y"] ** 2).idxmin(), "c"]
    assert centre == df["c"].max()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.tricontourf(df["x"], df["y"], df["c"], 10)
    plt.close(fig)


def test_closed_shutter_gives_background_only(ns):
    RE, mv, spot, I = ns["RE"], ns["mv"], ns["spot"], ns["I"]
    RE(mv(spot.exp, 0.05))
    RE(mv(ns["shutter"], "Closed"))
    try:
        assert ns["shutter"].get() == "Closed"
        uid, = RE(ns["count"]([spot, I], num=1))
    finally:
        RE(mv(ns["shutter"], "Open"))
    im, = ns["db"][uid].data("spot_img")
    # open, this exposure puts ~5000 counts on top of the background at the centre
    assert abs(im[215:265, 270:370].mean() - 1000) < 20


def test_session_bec_draws_a_grid_picture_for_grid_scans(ns):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simbeamline.session import run_engine

    RE, bec = run_engine(ns["db"], progress=False)  # as the profile's: table and plots on
    RE(ns["mv"](ns["spot"].exp, 0.005))
    ns["I"].kind = "normal"
    try:
        RE(ns["bp"].grid_scan([ns["spot"], ns["I"]], ns["mtr_spotx"], -50, 50, 3,
                              ns["mtr_spoty"], -50, 50, 3, False))
    finally:
        ns["I"].kind = "hinted"
    labels = {plt.figure(n).get_label(): plt.figure(n) for n in plt.get_fignums()}
    grid = labels.get("spot_sum vs motor_spotx motor_spoty")
    assert grid is not None, list(labels)
    assert any(ax.images for ax in grid.axes)  # LiveGrid's picture
    plt.close("all")
