"""What a running local stack is, and its record on disk (``root/stack.json``).

Kept apart from :mod:`segstream.stack` (which starts and stops the servers) so that the
provisioning, process and lifecycle modules can all share the error type and the record
without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["StackError", "StackInfo", "default_cache_dir", "read_stack", "write_stack"]


class StackError(RuntimeError):
    """The local stack could not be provisioned, started or stopped (one-line message)."""


@dataclass(frozen=True)
class StackInfo:
    """Where a running stack lives and how to reach it."""

    root: Path
    kafka_port: int
    redis_port: int
    kafka_pid: int
    redis_pid: int
    secure: bool = False  # Kafka SASL_SSL and Redis TLS + ACL user (start_secure_stack)

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def kafka_url(self) -> str:
        return f"kafka://127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"{'rediss' if self.secure else 'redis'}://127.0.0.1:{self.redis_port}/0"


def default_cache_dir() -> Path:
    """``<repo root>/.cache`` (git-ignored); holds the Maven-resolved Kafka jars."""
    return Path(__file__).resolve().parent.parent / ".cache"


def write_stack(info: StackInfo) -> None:
    """Record ``info`` in ``info.root/stack.json`` (what :func:`read_stack` reads back)."""
    fields = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(info).items()}
    (info.root / "stack.json").write_text(json.dumps(fields, indent=2) + "\n")


def read_stack(root: Path) -> StackInfo | None:
    """The stack recorded in ``root/stack.json``, running or not; None if absent or unreadable."""
    try:
        raw = json.loads((root / "stack.json").read_text())
        keys = ("kafka_port", "redis_port", "kafka_pid", "redis_pid")
        kafka_port, redis_port, kafka_pid, redis_pid = (int(raw[k]) for k in keys)
        secure = bool(raw.get("secure", False))
        return StackInfo(Path(raw["root"]), kafka_port, redis_port, kafka_pid, redis_pid, secure)
    except (OSError, ValueError, KeyError, TypeError):
        return None
