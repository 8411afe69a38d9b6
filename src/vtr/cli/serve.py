"""``vtr serve``: run the search engine's HTTP API and web page over one index folder."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys
from pathlib import Path
from types import FrameType

from vtr.errors import IndexStoreError, VtrError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve an index over HTTP: JSON API, video streaming and a web page",
        description=(
            "Serve a search index (made by `vtr index`) over HTTP: a web page at /, the JSON API under /api "
            "and its documentation at /docs. Binds 127.0.0.1 (this machine only) unless --host says otherwise."
        ),
    )
    parser.add_argument("--db", required=True, type=Path, metavar="INDEX", help="index folder written by `vtr index`")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it to the network)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for encoding queries (default: torch's choice, one per core); "
        "1 keeps latency steady on a machine busy with other work",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Open the index, bind the address, and serve until interrupted."""
    import uvicorn

    from vtr.serve import create_app

    index_dir: Path = args.db
    if not index_dir.is_dir():
        raise IndexStoreError(
            f"no index folder at {index_dir}: build one with `vtr index VIDEO_FOLDER --model MODEL --db {index_dir}`"
        )
    if not 0 <= args.port <= 65535:
        raise VtrError(f"--port must be between 0 and 65535, got {args.port}")

    if args.threads is not None:
        if args.threads < 1:
            raise VtrError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)  # asked for by the user, for this process only
    app = create_app(index_dir)
    print(f"vtr: opening index {index_dir} ...", file=sys.stderr, flush=True)
    app.state.search_service.open()  # fails here, as one line, rather than on the first request
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"vtr: serving {index_dir} at http://{shown}:{port}/ (API docs at /docs; Ctrl+C to stop)", flush=True)
    if not _is_loopback(host):
        print(
            f"vtr: warning: {host} is reachable from other machines; anyone who can reach it can search and "
            "stream the indexed videos",
            file=sys.stderr,
            flush=True,
        )
    config = uvicorn.Config(app, log_level=args.log_level, access_log=args.log_level == "debug")
    # uvicorn shuts down gracefully on SIGINT / SIGTERM, then raises the signal again; that second one is caught
    # here so a stopped server exits 0 rather than dying by the signal.
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    print("vtr: server stopped", file=sys.stderr, flush=True)
    return 0


class _Stopped(Exception):
    """SIGTERM arrived after uvicorn had already shut down."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _bind(host: str, port: int) -> socket.socket:
    # Binding here (not inside uvicorn) turns "address in use" into a one-line error and makes --port 0 printable.
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise VtrError(f"cannot resolve --host {host}: {error}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise VtrError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
