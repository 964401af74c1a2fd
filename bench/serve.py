"""Serve an app factory with the uvicorn settings that ``casebook serve`` uses
(``api/cli.py``): factory=True, one worker, no access log, uvloop and httptools as
installed (uvicorn's "auto"), on 127.0.0.1.

``python -m bench.serve --port 8123`` serves the bare baseline app.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", default="bench.bare_app:create_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    uvicorn.run(
        args.app,
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,
        log_level="info",
        server_header=False,
    )


if __name__ == "__main__":
    main()
