"""Production launcher: N daphne processes accepting on one listening socket.

    .venv/bin/python scripts/serve.py --workers 2 --host 0.0.0.0 --port 8000

The port is bound once here and handed to every worker as an inherited file descriptor (``daphne --fd``),
which is what systemd socket activation does; the kernel spreads connections over the workers. The
workers share nothing but PostgreSQL and Redis (``REDIS_URL`` is required for more than one worker, or
WebSocket subscribers on one process would miss events published by another). SIGTERM/SIGINT stop every
worker; when one worker dies the others are stopped too and the exit status is non-zero, so a supervisor
(systemd, Kubernetes) restarts the whole set.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")
STOP_GRACE_SECONDS = 15.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="daphne processes (default: cores)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--application", default="mlplatform.asgi:application")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.workers > 1 and not os.environ.get("REDIS_URL"):
        parser.error("more than one worker needs REDIS_URL (the channel layer that carries live events across them)")
    return args


def listen(host: str, port: int) -> socket.socket:
    """The shared listening socket, inheritable by the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(1024)
    listener.set_inheritable(True)
    return listener


def start_workers(listener: socket.socket, workers: int, application: str) -> list[subprocess.Popen]:
    """Start the daphne processes on the inherited socket."""
    fd = listener.fileno()
    command = [str(DAPHNE), "--fd", str(fd), "--access-log", "/dev/null", application]
    return [subprocess.Popen(command, cwd=ROOT, pass_fds=(fd,)) for _ in range(workers)]  # noqa: S603 (fixed argv)


def stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM every live worker, SIGKILL those still running after the grace period."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    """Serve until a signal or until a worker exits; returns the exit status."""
    args = parse_args(argv)
    listener = listen(args.host, args.port)
    processes = start_workers(listener, args.workers, args.application)
    listener.close()  # the workers hold the socket now
    print(f"serving on http://{args.host}:{args.port}/ with {args.workers} daphne process(es)", flush=True)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping and all(process.poll() is None for process in processes):
        time.sleep(0.2)
    died = [process for process in processes if process.poll() is not None]
    stop(processes)
    if died and not stopping:
        print(f"a worker exited with status {died[0].returncode}; stopped the others", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
