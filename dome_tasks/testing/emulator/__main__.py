"""`python -m dome_tasks.testing.emulator [--host H] [--port P] [--token T] [--account-id A]
[--serve-workers]`."""

from __future__ import annotations

import argparse

from dome_tasks.testing.emulator.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_TOKEN
from dome_tasks.testing.emulator.serve import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m dome_tasks.testing.emulator", description="Run the Cloudflare API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8788, help="port (0 = any free port)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bearer token to accept")
    parser.add_argument("--account-id", default=DEFAULT_ACCOUNT_ID, help="the account id")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument(
        "--serve-workers",
        action="store_true",
        help="run deployed workers under workerd (wrangler dev) and answer "
        "<worker>.<subdomain>.workers.dev requests with them",
    )
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds every API call waits before it is answered (default 0)")
    args = parser.parse_args(argv)
    serve(
        args.host,
        args.port,
        args.token,
        args.account_id,
        verbose=not args.quiet,
        serve_workers=args.serve_workers,
        latency=args.latency,
    )


if __name__ == "__main__":
    main()
