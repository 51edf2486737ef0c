"""What first touching memory costs on this host, against touching it again.

    python benchmarks/bench_fresh_memory.py --rounds 3

Each round waits ``--pause`` seconds (so that memory the kernel freed has time to be
handed back to the hypervisor, where it does so), then fills a fresh 512 MiB numpy
array (every page touched for the first time) and adds one to it (every page
touched again). Printed per round: microseconds per 4 KiB page, first touch and
again, and their ratio.

Why it matters here: every frame a count saves is new page cache, and a class's
processes grow their heaps while counting; on a host where a first touch costs
tens of microseconds a page, a 1.2 MB frame costs milliseconds of system time
before any of our code runs, and the figures of the other benchmarks drift with it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

SIZE = 512 << 20
PAGE = 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pause", type=float, default=5.0)
    args = parser.parse_args()
    pages = SIZE // PAGE
    print("| round | first touch (us/page) | again (us/page) | ratio |\n|---|---|---|---|")
    for number in range(args.rounds):
        time.sleep(args.pause)     # a measured interval, not a wait for a condition
        started = time.perf_counter()
        block = np.ones(SIZE // 4, np.int32)
        first = time.perf_counter() - started
        started = time.perf_counter()
        block += 1
        again = time.perf_counter() - started
        del block
        print(f"| {number + 1} | {1e6 * first / pages:.2f} | {1e6 * again / pages:.3f} | "
              f"{first / again:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
