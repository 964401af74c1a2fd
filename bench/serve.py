"""Serve an app factory exactly as ``casebook serve`` does (``api.server.run``: the
same protocol, limits and log settings), one worker, on 127.0.0.1.

``python -m bench.serve --port 8123`` serves the bare baseline app.
"""

from __future__ import annotations

import argparse
import logging

from api.server import run
from infrastructure.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", default="bench.bare_app:create_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run(args.host, args.port, 1, Settings(), app=args.app)


if __name__ == "__main__":
    main()
