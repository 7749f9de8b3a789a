"""Start the dashboard's streamlit server for ``toymodels app``: the address checked first, then ``streamlit run``
in a child process that stops with this one. Imports neither streamlit nor plotly.

Example:
    >>> check_address("127.0.0.1", None)
    >>> serve(Path("runs"), port=8501, host="127.0.0.1", headless=True)   # doctest: +SKIP
"""

from __future__ import annotations

import errno
import signal
import socket
import subprocess
import sys
from pathlib import Path

from toymodels.app import SCRIPT
from toymodels.config import ConfigError


def check_address(host: str, port: int | None) -> None:
    """Refuse, before streamlit starts, an address it could not listen on: ConfigError for a host that is no address
    of this machine, OSError (the environment) for a port in use or one that needs more privileges."""
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError):
        raise ConfigError(f"--host {host!r}: not an address or a host name this machine knows (e.g. 127.0.0.1, "
                          "0.0.0.0)") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free for streamlit too
        try:
            sock.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                raise ConfigError(f"--host {host!r}: not an address of this machine (e.g. 127.0.0.1, 0.0.0.0)"
                                  ) from None
            if err.errno == errno.EADDRINUSE:
                raise OSError(err.errno, f"port {port} is in use; choose another --port") from None
            raise OSError(err.errno, f"cannot listen on {host}:{port} ({err.strerror})") from None


def serve(folder: Path, port: int | None, host: str, headless: bool) -> int:
    """Run ``streamlit run app/main.py -- FOLDER`` until it ends; returns its exit status. SIGTERM is forwarded;
    Ctrl-C reaches both processes (one process group)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none",  # the app reruns on new results, not on edits of its source
           "--client.toolbarMode", "viewer"]
    cmd += ["--server.address", host]
    if port is not None:
        cmd += ["--server.port", str(port)]
    if headless:
        cmd += ["--server.headless", "true"]
    cmd += ["--", str(folder.resolve())]
    proc = subprocess.Popen(cmd)
    previous = signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue  # streamlit got the Ctrl-C too and is shutting down
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
