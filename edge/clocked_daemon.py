"""``python -m edge.clocked_daemon --config FILE --clock-file FILE``: `storeedge run`, with the
prediction clock on the chain demo's simulated time (`edge.demo.sim_clock`). Demo only."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from edge.cli import _load, _until_signalled
from edge.daemon import Daemon
from edge.demo.sim_clock import SimulatedNow
from edge.errors import EdgeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.clocked_daemon", description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--clock-file", type=Path, required=True, help="the simulated offset (ms) file")
    args = parser.parse_args(argv)
    try:
        daemon = Daemon(_load(args.config))
        if daemon.predictions is None:
            raise EdgeError("clocked daemon: [models] enabled = false leaves no prediction clock to set")
        daemon.predictions.clock.now = SimulatedNow(args.clock_file)

        async def run() -> None:
            await daemon.run(await _until_signalled())

        asyncio.run(run())
    except EdgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
