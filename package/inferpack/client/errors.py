"""What a client call raises: the server's EasyDL errors as typed exceptions, and transport failures.

An answer with ``error_code`` becomes the ``ApiError`` subclass for that code, carrying
``error_code``, ``error_msg``, ``log_id`` (quote it to the operator: the server logged the
request under it) and the HTTP status.
"""

from __future__ import annotations

from typing import ClassVar

from inferpack import errors as server_errors  # the code table, standard library only


class ClientError(Exception):
    """Base of everything ``inferpack.client`` raises."""


class TransportError(ClientError):
    """The server could not be reached, or did not answer in time, or answered something that
    is not the EasyDL API (the cause is chained)."""


class ApiError(ClientError):
    """The server answered an EasyDL error."""

    code: ClassVar[int | None] = None  # the error_code this class stands for; None: any other

    def __init__(self, error_code: int, error_msg: str, log_id: int | None, http_status: int) -> None:
        super().__init__(f"{error_msg} (error_code {error_code}, log_id {log_id})")
        self.error_code = error_code
        self.error_msg = error_msg
        self.log_id = log_id
        self.http_status = http_status


class InternalServerError(ApiError):
    code = server_errors.InternalError.code


class InvalidArgumentError(ApiError):
    code = server_errors.InvalidArgument.code


class InvalidJSONError(ApiError):
    code = server_errors.InvalidJSON.code


class Base64DecodeError(ApiError):
    code = server_errors.Base64DecodeFailed.code


class InvalidInputSizeError(ApiError):
    code = server_errors.InvalidInputSize.code


class ImageDecodeError(ApiError):
    code = server_errors.ImageDecodeFailed.code


class MissingParameterError(ApiError):
    code = server_errors.MissingParameter.code


class ModelUnavailableError(ApiError):
    """Overloaded or still loading: retried by the clients (``retries``), raised when they run out."""

    code = server_errors.ModelUnavailable.code

    def __init__(
        self, error_code: int, error_msg: str, log_id: int | None, http_status: int, retry_after_s: float
    ) -> None:
        super().__init__(error_code, error_msg, log_id, http_status)
        self.retry_after_s = retry_after_s


class AuthCheckFailedError(ApiError):
    """The service's license does not verify; ``error_msg`` says why."""

    code = server_errors.AuthCheckFailed.code


ERRORS_BY_CODE: dict[int, type[ApiError]] = {
    cls.code: cls
    for cls in (
        InternalServerError,
        InvalidArgumentError,
        InvalidJSONError,
        Base64DecodeError,
        InvalidInputSizeError,
        ImageDecodeError,
        MissingParameterError,
        AuthCheckFailedError,
    )
    if cls.code is not None
}
