"""GET a page of a worker's HTTP server, with the bearer token when ``SEGSTREAM_API_TOKEN`` is set.

>>> from agents.settings import Settings
>>> worker_request(Settings(web_port=7000, api_token="t0k"), "/metrics").full_url
'http://127.0.0.1:7000/metrics'
>>> worker_request(Settings(api_token="t0k"), "/segments").get_header("Authorization")
'Bearer t0k'
>>> worker_request(Settings(), "/segments").get_header("Authorization") is None
True
"""

from __future__ import annotations

import urllib.request

from agents.settings import Settings

__all__ = ["get_page", "worker_request"]


def worker_request(settings: Settings, path: str) -> urllib.request.Request:
    """A request for ``path`` on the worker at ``127.0.0.1:<web_port>``."""
    headers = (
        {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"} if settings.api_token else {}
    )
    return urllib.request.Request(f"http://127.0.0.1:{settings.web_port}{path}", headers=headers)


def get_page(settings: Settings, path: str, timeout_s: float = 5.0) -> bytes:
    """The body of ``GET path``; raises ``urllib.error.URLError`` (an ``OSError``) when it fails."""
    with urllib.request.urlopen(worker_request(settings, path), timeout=timeout_s) as response:
        body: bytes = response.read()
    return body
