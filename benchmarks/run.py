"""``python -m benchmarks.run [--quick] [--json out.json]``: every workload, every contender, one table.

One process, one PostgreSQL server, one moto S3 server. Importing Chainlit writes ``.chainlit/`` and
``.files/`` into the working directory, so the run moves into a temporary directory first and
imports everything that imports Chainlit only then.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the history, fewer repetitions")
    parser.add_argument(
        "--large", action="store_true",
        help="also ten times the history: this package's reads side by side, and adoption of it",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="openrag-bench-"))
    json_path = args.json.resolve() if args.json else None
    os.chdir(workdir)
    os.environ["CHAINLIT_APP_ROOT"] = str(workdir)
    # Never read the developer's AWS setup: every client gets the moto endpoint and keys explicitly.
    os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(workdir / "no-aws-config")
    sys.path.insert(0, str(REPO))
    try:
        return asyncio.run(_run(args.quick, args.large, workdir, json_path))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _run(quick: bool, large: bool, workdir: Path, json_path: Path | None) -> int:
    from .services import MotoProcess, start_postgres

    postgres = start_postgres()
    moto = MotoProcess()
    try:
        moto.start()
        from .suite import run_suite

        print(await run_suite(quick, large, postgres, moto.endpoint_url, workdir, json_path))
    finally:
        moto.stop()
        postgres.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
