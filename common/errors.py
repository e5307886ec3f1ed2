"""Error types shared by every service and the gateway.

A service raises one of these; nameko serialises it over RPC, and because each class is
registered with ``deserialize_to_instance`` the caller receives the same type again (not a
generic ``RemoteError``). The gateway turns any ``PanelError`` into API.md's error envelope
in one place (``gateway.http``), using ``code`` and its own map of error type to HTTP
status: the domain says what went wrong, not how a transport shows it.
"""

import json

class PanelError(Exception):
    """Base of every error the API may show to a customer.

    ``code`` is the stable snake_case error code, ``is_refusal`` says the request was
    refused (bad input, wrong state, not allowed: nothing broke on our side), ``fields`` maps a field name to the reasons it was refused, and
    ``extra`` holds further members of the error object (``retry_after``, ...). The
    positional arguments are exactly what nameko sends over the wire, so the caller
    rebuilds an equal error with ``cls(*args)``.
    """

    default_code = "error"
    is_refusal = False

    def __init__(self, message="", fields=None, extra=None, **more):
        fields = dict(fields or {})
        if isinstance(extra, str):  # as received over RPC
            extra = json.loads(extra)
        extra = dict(extra or {}, **more)
        # nameko turns every non-string argument into a string on the wire; JSON keeps
        # numbers and booleans in ``extra`` (e.g. retry_after) what they were.
        super().__init__(message, fields, json.dumps(extra, default=str))
        self.message = message or self.__class__.__doc__.strip().splitlines()[0]
        self.fields = fields
        self.extra = extra

    @property
    def code(self):
        return self.extra.get("code", self.default_code)

    def __str__(self):
        return self.message

    def to_dict(self):
        """The ``error`` object of API.md's envelope."""
        body = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        body.update({k: v for k, v in self.extra.items() if k != "code"})
        return body


REMOTE_ERRORS = []  # registered with nameko by common.rpc_errors, which every RPC module imports


def _remote(cls):
    """Mark ``cls`` to cross RPC typed (nameko looks it up by import path; the registration
    itself is ``common.rpc_errors``: this module stays free of nameko)."""
    REMOTE_ERRORS.append(cls)
    return cls


@_remote
class ValidationFailed(PanelError):
    """The request is invalid."""

    default_code = "validation_error"
    is_refusal = True


@_remote
class Unauthenticated(PanelError):
    """Authentication is required."""

    default_code = "unauthenticated"
    is_refusal = True


@_remote
class Forbidden(PanelError):
    """This action is not allowed."""

    default_code = "forbidden"
    is_refusal = True


@_remote
class NotFound(PanelError):
    """No such resource."""

    default_code = "not_found"
    is_refusal = True


@_remote
class Conflict(PanelError):
    """The request conflicts with the current state."""

    default_code = "conflict"
    is_refusal = True


@_remote
class RateLimited(PanelError):
    """Too many attempts; try again later."""

    default_code = "rate_limited"
    is_refusal = True

    @property
    def retry_after(self):
        return int(self.extra.get("retry_after", 1))


@_remote
class PayloadTooLarge(PanelError):
    """The request or one of its files is too large."""

    default_code = "payload_too_large"
    is_refusal = True


@_remote
class UnsupportedMediaType(PanelError):
    """This type of file is not accepted."""

    default_code = "unsupported_media_type"
    is_refusal = True


@_remote
class ServiceUnavailable(PanelError):
    """A service did not answer in time."""

    default_code = "unavailable"


@_remote
class ConcurrencyConflict(Conflict):
    """The stream was changed by someone else since it was read."""


def error_with_code(error_cls, code, message="", **extra):
    """An ``error_cls`` whose code is more specific than the class default, for example
    ``error_with_code(Conflict, "insufficient_funds", "...")``."""
    return error_cls(message, extra=dict(extra, code=code))
