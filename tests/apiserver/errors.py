"""metav1.Status error bodies, shaped like kube-apiserver's (k8s.io/apimachinery/pkg/api/errors)."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

OPTIMISTIC_LOCK_MSG = (
    "the object has been modified; please apply your changes to the latest version and try again"
)

_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answered as an HTTP status with a metav1.Status body."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: JSON | None = None,
        metadata: JSON | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason if reason is not None else _REASONS.get(code, "")
        self.details = details
        self.metadata = metadata or {}

    def status(self) -> JSON:
        """The metav1.Status body for this error."""
        return status_body(
            self.code, self.message, self.reason, details=self.details, metadata=self.metadata
        )


def status_body(
    code: int,
    message: str,
    reason: str,
    *,
    details: JSON | None = None,
    metadata: JSON | None = None,
    success: bool = False,
) -> JSON:
    """Build a metav1.Status document."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": metadata or {},
        "status": "Success" if success else "Failure",
    }
    if not success:
        body["message"] = message
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def qualified(resource: str, group: str) -> str:
    """`nodes` or `leases.coordination.k8s.io`, as the server names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str) -> JSON:
    details: JSON = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


def not_found(resource: str, group: str, name: str) -> ApiError:
    """404 NotFound for one object."""
    return ApiError(
        404,
        f'{qualified(resource, group)} "{name}" not found',
        details=_details(resource, group, name),
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    """409 AlreadyExists on create."""
    return ApiError(
        409,
        f'{qualified(resource, group)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(resource, group, name),
    )


def conflict(resource: str, group: str, name: str, why: str = OPTIMISTIC_LOCK_MSG) -> ApiError:
    """409 Conflict (stale resourceVersion, failed precondition)."""
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        details=_details(resource, group, name),
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; causes are (field, reason, message) as field.ErrorList renders them."""
    rendered = [f"{field}: {msg}" for field, _, msg in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details: JSON = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": reason, "message": msg, "field": field} for field, reason, msg in causes
    ]
    title = f"{kind}.{group}" if group else kind
    return ApiError(422, f'{title} "{name}" is invalid: {summary}', details=details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, message)


def expired(message: str, *, metadata: JSON | None = None) -> ApiError:
    """410 Expired (compacted resourceVersion or continue token)."""
    return ApiError(410, message, metadata=metadata)


def method_not_allowed(method: str) -> ApiError:
    """405 for a verb the resource does not serve."""
    return ApiError(
        405, f"the server does not allow this method on the requested resource ({method})"
    )
