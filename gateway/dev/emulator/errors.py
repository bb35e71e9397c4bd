"""Stripe's error shape, raised anywhere in the emulator and rendered by the API middleware."""

from __future__ import annotations

from typing import Any, Literal

ErrorType = Literal[
    "invalid_request_error", "api_error", "idempotency_error", "card_error", "authentication_error"
]


class StripeError(Exception):
    """An error the emulator answers the way Stripe would: status code plus ``{"error": ...}``."""

    def __init__(
        self,
        status: int,
        type_: ErrorType,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        decline_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.param = param
        self.code = code
        self.decline_code = decline_code

    def body(self) -> dict[str, Any]:
        # Stripe omits absent fields rather than sending nulls.
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.param is not None:
            error["param"] = self.param
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        return {"error": error}

    @classmethod
    def invalid(
        cls, message: str, *, param: str | None = None, code: str | None = None
    ) -> StripeError:
        return cls(400, "invalid_request_error", message, param=param, code=code)

    @classmethod
    def missing(cls, object_name: str, object_id: str, *, param: str = "id") -> StripeError:
        return cls(
            404,
            "invalid_request_error",
            f"No such {object_name}: '{object_id}'",
            param=param,
            code="resource_missing",
        )

    @classmethod
    def required(cls, param: str) -> StripeError:
        return cls.invalid(
            f"Missing required param: {param}.", param=param, code="parameter_missing"
        )

    @classmethod
    def api_error(cls) -> StripeError:
        return cls(500, "api_error", "An unknown error occurred (injected by the emulator).")
