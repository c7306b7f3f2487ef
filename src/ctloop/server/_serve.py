"""Running the team server with uvicorn, and the bind rule: without auth, loopback only.

>>> check_bind("127.0.0.1", auth=False)
>>> check_bind("0.0.0.0", auth=False)
Traceback (most recent call last):
...
ctloop.errors.ConfigError: refusing to serve without auth on 0.0.0.0: anyone who can reach it could change the registry and read every artifact; bind a loopback address (--host 127.0.0.1) or drop --no-auth and use API keys (`ctloop server bootstrap`)
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from ctloop.errors import ConfigError

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["check_bind", "is_loopback", "run_server"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, ``localhost``).

    >>> is_loopback("localhost"), is_loopback("::1"), is_loopback("192.168.1.4")
    (True, True, False)
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, auth: bool) -> None:
    """Refuse to serve without auth on an address other machines can reach."""
    if not auth and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve without auth on {host}: anyone who can reach it could change "
            "the registry and read every artifact; bind a loopback address (--host "
            "127.0.0.1) or drop --no-auth and use API keys (`ctloop server bootstrap`)"
        )


def run_server(
    workspace: Workspace, *, host: str = "127.0.0.1", port: int = 8000, auth: bool = True
) -> None:
    """Serve the API over ``workspace`` until stopped (Ctrl-C or SIGTERM)."""
    check_bind(host, auth=auth)
    import uvicorn

    from ctloop.server._app import create_app

    uvicorn.run(
        create_app(workspace, auth=auth),
        host=host,
        port=port,
        access_log=False,  # the audit log records writes; headers (keys) are never logged
        log_level="info",
        timeout_graceful_shutdown=10,
    )
