"""Settings of the shadow proxy, validated before anything starts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from tunecheck.errors import TunecheckError


class ShadowConfigError(TunecheckError):
    """An invalid proxy setting (the CLI exits 2)."""


@dataclass
class ShadowConfig:
    """How ``tunecheck shadow`` routes and logs.

    ``production_url`` / ``candidate_url`` are OpenAI-style base URLs (ending in ``/v1``).
    Mirror mode (the default): every request is served by production and a
    ``mirror_fraction`` of them is copied to the candidate in the background.
    Split mode (``split`` set): a sticky ``split`` share of users is *served* by the
    candidate instead, keyed by ``user_header`` or the request field ``user_field``.
    """

    production_url: str
    candidate_url: str
    candidate_api_key: str | None = field(default=None, repr=False)
    candidate_model: str | None = None
    mirror_fraction: float = 1.0
    split: float | None = None
    experiment: str = "shadow"
    user_header: str = "x-user-id"
    user_field: str | None = "user"
    keep_content: bool = True
    queue_size: int = 256
    mirror_concurrency: int = 16
    candidate_timeout: float = 60.0
    production_timeout: float = 600.0
    shutdown_grace: float = 5.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self.production_url = _base_url(self.production_url, "--production")
        self.candidate_url = _base_url(self.candidate_url, "--candidate")
        if not 0.0 <= self.mirror_fraction <= 1.0:
            raise ShadowConfigError(
                f"--mirror-fraction must be between 0 and 1, got {self.mirror_fraction}",
                hint="e.g. --mirror-fraction 0.1 mirrors one request in ten",
            )
        if self.split is not None and not 0.0 < self.split < 1.0:
            raise ShadowConfigError(
                f"--split must be strictly between 0 and 1, got {self.split}",
                hint="it is the share of users served by the candidate, e.g. --split 0.1",
            )
        if self.queue_size < 1 or self.mirror_concurrency < 1:
            raise ShadowConfigError("--mirror-queue and --mirror-concurrency must be >= 1")
        if self.candidate_timeout <= 0 or self.production_timeout <= 0:
            raise ShadowConfigError("timeouts must be positive")
        self.user_header = self.user_header.lower()

    @property
    def mode(self) -> str:
        return "split" if self.split is not None else "mirror"

    def public(self) -> dict[str, Any]:
        """The settings as logged: everything except the candidate's key."""
        return {
            "mode": self.mode,
            "candidate_model": self.candidate_model,
            "candidate_key_set": bool(self.candidate_api_key),
            "mirror_fraction": self.mirror_fraction,
            "split": self.split,
            "experiment": self.experiment,
            "user_header": self.user_header,
            "user_field": self.user_field,
            "keep_content": self.keep_content,
            "queue_size": self.queue_size,
            "mirror_concurrency": self.mirror_concurrency,
            "candidate_timeout": self.candidate_timeout,
            "production_timeout": self.production_timeout,
            "shutdown_grace": self.shutdown_grace,
        }


def _base_url(url: str, option: str) -> str:
    url = (url or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ShadowConfigError(
            f"{option} must be an http(s) URL, got {url!r}",
            hint="an OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1",
        )
    return url


def assign_variant(unit: str, fraction: float, experiment: str) -> str:
    """Sticky assignment: the same unit always lands in the same variant.

    The unit key and experiment name are hashed (sha256) to a number in [0, 1);
    below ``fraction`` means the candidate. A new experiment name reshuffles users.
    """
    digest = hashlib.sha256(f"{experiment}\x00{unit}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "candidate" if u < fraction else "production"
