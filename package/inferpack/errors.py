"""The EasyDL error table as exceptions.

Each class carries its EasyDL ``error_code``, the table's ``error_msg`` and the HTTP
status the server answers with. Raise them with a ``detail`` that tells the caller
what exactly was wrong; the server turns them into
``{"log_id", "error_code", "error_msg"}`` in one place (``server/middleware.py``).
"""

from __future__ import annotations

from typing import ClassVar


class InferpackError(Exception):
    """Base of every error a client can be answered with."""

    code: ClassVar[int] = 336000
    message: ClassVar[str] = "Internal error"
    http_status: ClassVar[int] = 500

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.message)
        self.detail = detail

    @property
    def error_msg(self) -> str:
        """The table's message, followed by the specific reason when there is one."""
        return f"{self.message}: {self.detail}" if self.detail else self.message


class InternalError(InferpackError):
    code = 336000
    message = "Internal error"
    http_status = 500


class InvalidArgument(InferpackError):
    code = 336001
    message = "Invalid Argument"
    http_status = 400


class UnknownRoute(InvalidArgument):
    """A path this service does not answer (HTTP 404), reported with the EasyDL body shape."""

    http_status = 404


class MethodNotAllowed(InvalidArgument):
    http_status = 405


class NotFound(InvalidArgument):
    """An id (dataset, job) this service does not hold (HTTP 404)."""

    http_status = 404


class Conflict(InvalidArgument):
    """The request contradicts what exists: a dataset id taken, a dataset a job still reads (409)."""

    http_status = 409


class RequestTimeout(InvalidArgument):
    """The body did not arrive within the deadline (a client trickling it, or gone quiet)."""

    http_status = 408


class UriTooLong(InvalidArgument):
    http_status = 414


class UnsupportedEncoding(InvalidArgument):
    """A Content-Encoding the server does not decode (br, zstd, ...)."""

    http_status = 415


class HeadersTooLarge(InvalidArgument):
    """A header line over the limit, or too many headers."""

    http_status = 431


class InvalidJSON(InferpackError):
    code = 336002
    message = "Invalid JSON"
    http_status = 400


class Base64DecodeFailed(InferpackError):
    code = 336003
    message = "Base64 decode failed"
    http_status = 400


class InvalidInputSize(InferpackError):
    """Image dimensions outside the limits."""

    code = 336004
    message = "Invalid input size"
    http_status = 400


class PayloadTooLarge(InvalidInputSize):
    """Same EasyDL code as InvalidInputSize, but the body itself is too big (HTTP 413)."""

    http_status = 413


class ImageDecodeFailed(InferpackError):
    code = 336005
    message = "Image decode failed"
    http_status = 400


class MissingParameter(InferpackError):
    code = 336006
    message = "Missing required parameter"
    http_status = 400


class ModelUnavailable(InferpackError):
    """Overloaded (queue full, rate limit) or still loading: the client should retry."""

    code = 336100
    message = "Model temporarily unavailable"
    http_status = 503

    def __init__(self, detail: str = "", retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class AuthCheckFailed(InferpackError):
    """License missing, invalid, expired, for another machine or deploy name, clock rollback."""

    code = 337000
    message = "Auth check failed"
    http_status = 403


class AccessDenied(AuthCheckFailed):
    """The data and job routes' API key is missing or wrong (HTTP 401, as a credential problem)."""

    http_status = 401


ERROR_CLASSES: tuple[type[InferpackError], ...] = (
    InternalError,
    InvalidArgument,
    InvalidJSON,
    Base64DecodeFailed,
    InvalidInputSize,
    ImageDecodeFailed,
    MissingParameter,
    ModelUnavailable,
    AuthCheckFailed,
)


class BundleError(Exception):
    """A model bundle (model.onnx + model.json) that cannot be served; the message names why."""


class ConfigError(Exception):
    """A server setting that is missing, malformed or names something unavailable."""
