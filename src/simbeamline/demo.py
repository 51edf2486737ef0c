"""``simbeamline demo``: a short beamline session from start to pictures.

Starts the IOCs if they are down, then runs what the "Handling Images" tutorials
run, with shorter exposures so the whole session takes a minute or two: counts of
``spot`` at low and high exposure, a 5 x 5 grid scan of the spot motors, a
Fermat-spiral scan of ``dot``, and a count of ``adsimdet`` when its IOC is up.
Every run goes to the persistent catalog; the pictures are drawn from the catalog
(so they prove the runs and frame files were stored) into PNG files:

- ``spot_frame.png``  one frame at high exposure, pixel for pixel (viridis: brighter is more);
- ``spot_mean.png``   one low-exposure frame beside the mean of the stack;
- ``spot_grid.png``   the 5 x 5 grid of frames, each titled with its x and y;
- ``dot_spiral.png``  tricontour maps of the spiral scan over the dot motors, raw and
  normalised by I, with the measured points.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .control.config import BeamlineConfig

#: Exposures (s): low as in the tutorial; high, grid and spiral much shorter than its 5 s.
LOW_EXPOSURE = 0.005
HIGH_EXPOSURE = 0.2
SCAN_EXPOSURE = 0.05
STACK_FRAMES = 30
#: Spiral: the tutorial's 75 x 75 area with a coarser step (29 points instead of 197).
SPIRAL_STEP = 8.0


class Progress:
    """A RunEngine callback: one tqdm bar per run, advanced by each event."""

    def __init__(self):
        self.bar = None

    def __call__(self, name, doc):
        from tqdm import tqdm

        if name == "start":
            total = doc.get("num_points")
            self.bar = tqdm(total=total, unit="pt", leave=True, file=sys.stdout,
                            desc=f"  scan {doc.get('scan_id')} {doc.get('plan_name')}")
        elif name == "event" and self.bar is not None:
            self.bar.update(1)
        elif name == "stop" and self.bar is not None:
            self.bar.close()
            self.bar = None


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="simbeamline demo",
        description="Start the beamline, run a short session into the catalog, write PNGs.")
    parser.add_argument("--out", type=Path, default=Path("output"),
                        help="folder for the PNG files (default ./output)")
    parser.add_argument("--no-start", action="store_true",
                        help="do not start the IOCs (fail if they are down)")
    return parser.parse_args(argv)


def _check_out(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise SystemExit(f"simbeamline demo: cannot write PNGs to {out}: {err.strerror or err}; "
                         "choose another folder with --out") from None
    return out.resolve()


def main(argv: list[str]) -> int:
    """Run the demo; return the exit status."""
    args = _parse(argv)
    out = _check_out(args.out)
    import matplotlib

    matplotlib.use("Agg")  # files only; also on machines without a display

    from .control import launcher
    from .devices.beamline import BeamlineNotRunning
    from .catalog.paths import CatalogDirError
    from .session import build_session

    config = BeamlineConfig.from_env()
    started = time.monotonic()
    try:
        if not args.no_start:
            print(f"simbeamline demo: starting the IOCs if they are down (port {config.ca_port}) ...",
                  flush=True)
            launcher.ensure_running(config)
        print("simbeamline demo: connecting the devices and opening the catalog ...", flush=True)
        ns = build_session(config, table_and_plots=False,
                           move_progress=sys.stdout.isatty())  # bars per move only on a terminal
    except (launcher.LauncherError, BeamlineNotRunning, CatalogDirError) as err:
        print(f"simbeamline demo: {err}", file=sys.stderr)
        return 1
    ns["RE"].subscribe(Progress())
    uids = run_session(ns)
    pictures = draw_pictures(ns, uids, out)
    print(f"\nsimbeamline demo: done in {time.monotonic() - started:.0f} s.")
    print(f"Catalog '{config.catalog_name}': {config.data_dir / 'catalog'}")
    print("Runs (uid, what):")
    for what, uid in uids.items():
        print(f"  {uid}  {what}")
    print(f"Pictures in {out}:")
    for path in pictures:
        print(f"  {path}")
    print("Next: `./run ipython` in the repository (`simbeamline ipython` with .venv/bin on "
          "PATH), then for example  h = db[-1]; h.table()")
    return 0


def run_session(ns: dict) -> dict[str, str]:
    """Run the demo's plans; return ``{what: run uid}``."""
    RE, bp, mv = ns["RE"], ns["bp"], ns["mv"]
    spot, dot, I = ns["spot"], ns["dot"], ns["I"]
    uids: dict[str, str] = {}

    def step(text):
        print(f"\n{text}", flush=True)

    step("Opening the shutter, centring the spot and dot motors")
    RE(mv(ns["shutter"], "Open"))
    RE(mv(ns["mtr_spotx"], 0, ns["mtr_spoty"], 0, ns["mtr_dotx"], 0, ns["mtr_doty"], 0))

    step(f"count: {STACK_FRAMES} frames of spot at low exposure ({LOW_EXPOSURE} s)")
    RE(mv(spot.exp, LOW_EXPOSURE))
    uids["spot count, low exposure"], = RE(bp.count([spot, I], num=STACK_FRAMES))

    step(f"count: 1 frame of spot at high exposure ({HIGH_EXPOSURE} s)")
    RE(mv(spot.exp, HIGH_EXPOSURE))
    uids["spot count, high exposure"], = RE(bp.count([spot, I], num=1))

    step(f"grid_scan: 5 x 5 positions of the spot motors, exposure {SCAN_EXPOSURE} s")
    RE(mv(spot.exp, SCAN_EXPOSURE))
    uids["spot grid_scan 5 x 5"], = RE(bp.grid_scan(
        [spot, I], ns["mtr_spotx"], -100, 100, 5, ns["mtr_spoty"], -100, 100, 5, False))

    step(f"spiral_fermat: dot over 75 x 75, step {SPIRAL_STEP}, exposure {SCAN_EXPOSURE} s")
    RE(mv(dot.exp, SCAN_EXPOSURE))
    uids["dot spiral_fermat"], = RE(bp.spiral_fermat(
        [I, dot], ns["mtr_dotx"], ns["mtr_doty"], 0, 0, 75, 75, SPIRAL_STEP, 1))

    if "adsimdet" in ns:
        step("count: 1 frame of adsimdet (HDF5 file per frame)")
        uids["adsimdet count"], = RE(bp.count(
            [ns["adsimdet"]], md=dict(title="Area Detector, Single mode, HDF5 file",
                                      purpose="image")))
    else:
        step("adsimdet: its IOC does not answer, so its count is left out")
    RE(mv(ns["mtr_spotx"], 0, ns["mtr_spoty"], 0, ns["mtr_dotx"], 0, ns["mtr_doty"], 0))
    return uids


def _show_frame(fig, ax, frame, title: str, **limits) -> None:
    """*frame* on *ax* with pixel axes and a colour bar in counts."""
    art = ax.imshow(frame, **limits)
    ax.set_title(title)
    ax.set_xlabel("column (pixel)")
    ax.set_ylabel("row (pixel)")
    fig.colorbar(art, ax=ax, label="counts")


def draw_pictures(ns: dict, uids: dict[str, str], out: Path) -> list[Path]:
    """Draw the PNGs from the catalog (as the tutorials read it); return their paths."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    db = ns["db"]
    print("\nDrawing the pictures from the catalog ...", flush=True)
    paths = []

    frame, = db[uids["spot count, high exposure"]].data("spot_img")
    paths.append(out / "spot_frame.png")
    plt.imsave(paths[-1], frame, cmap="viridis")  # the detector's picture, pixel for pixel

    h_stack = db[uids["spot count, low exposure"]]
    stack = np.stack(h_stack.data("spot_img"))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    limits = dict(vmin=stack.min(), vmax=stack.max())
    _show_frame(fig, ax1, stack[0], f"spot, 1 frame ({LOW_EXPOSURE} s)", **limits)
    _show_frame(fig, ax2, stack.mean(axis=0), f"mean of {len(stack)} frames", **limits)
    paths.append(out / "spot_mean.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax_arr = plt.subplots(5, 5, figsize=(8, 7))
    arts, lo, hi = [], np.inf, -np.inf
    for ax, event in zip(ax_arr.ravel(), db[uids["spot grid_scan 5 x 5"]].events(fill=True)):
        data = event["data"]
        ax.axis("off")
        arts.append(ax.imshow(data["spot_img"]))
        lo, hi = min(lo, data["spot_img"].min()), max(hi, data["spot_img"].max())
        ax.set_title(f'x={data["motor_spotx"]:.0f}, y={data["motor_spoty"]:.0f}',
                     size="xx-small", pad=2)
    for art in arts:
        art.set_clim(lo, hi)
    fig.suptitle("spot over a 5 x 5 grid: x = motor_spotx, y = motor_spoty", size="small")
    fig.colorbar(arts[0], ax=ax_arr, shrink=0.6, label="counts")
    paths.append(out / "spot_grid.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    rows = []
    for event in db[uids["dot spiral_fermat"]].events(fill=True):
        data = event["data"]
        im = data["dot_img"]
        bright = im[im > 1000]
        c = float(bright.mean()) if bright.size else 0.0
        rows.append({"x": data["motor_dotx"], "y": data["motor_doty"], "c": c,
                     "c_normed": c / data["I"]})
    df = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    panels = (("c", "un normalized", "mean bright-pixel counts"),
              ("c_normed", "normalized by I", "mean bright-pixel counts / mA"))
    for ax, (column, title, unit) in zip(axes, panels):
        ax.tricontour(df["x"], df["y"], df[column], 10, linewidths=0.5, colors="k")
        filled = ax.tricontourf(df["x"], df["y"], df[column], 10)
        ax.plot(df["x"], df["y"], ".", color="w", markersize=2)
        ax.set_title(f"dot spiral, {title}")
        ax.set_xlabel("motor_dotx")
        ax.set_ylabel("motor_doty")
        ax.set_aspect("equal")
        fig.colorbar(filled, ax=ax, label=unit)
    paths.append(out / "dot_spiral.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
