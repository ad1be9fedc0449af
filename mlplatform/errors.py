"""Domain errors raised by services and selectors.

Services know nothing of HTTP frameworks; each error carries a stable code and
the HTTP status it maps to. The native API renders them in the standard
envelope, the MLflow façade in MLflow's shape, so one rule reads the same
everywhere.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base class: a request that cannot be carried out, with a user-facing message."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code


class InvalidInput(ServiceError):
    """The input breaks a rule (limit, type, immutability): 400."""

    status_code = 400
    code = "invalid"


class NotFound(ServiceError):
    """The object does not exist or is not visible to the caller: 404."""

    status_code = 404
    code = "not_found"


class Forbidden(ServiceError):
    """The caller may see the object but lacks the role for this action: 403."""

    status_code = 403
    code = "permission_denied"


class Conflict(ServiceError):
    """The request clashes with the current state (duplicate name, lost race): 409."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    """The body or file is over a configured size limit: 413."""

    status_code = 413
    code = "payload_too_large"


class Unavailable(ServiceError):
    """A backing service (database, storage) is down; retrying later can work: 503."""

    status_code = 503
    code = "unavailable"


class InsufficientStorage(ServiceError):
    """The storage behind the request is full (disk or quota); freeing space is needed: 507."""

    status_code = 507
    code = "insufficient_storage"
