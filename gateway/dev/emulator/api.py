"""The ``/v1`` API: Stripe's wire format on top of ``StripeEmulator``.

One middleware does what Stripe's edge does for every request, in this order: authenticate,
add injected latency, maybe fail (a 500, kept under the request's idempotency key as Stripe
keeps it) or drop the connection (before applying), decode the form, serialize and replay by
idempotency key, run the handler, maybe drop the connection after applying. Handlers only
translate between parameters and emulator calls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.dev.emulator import listing, schema
from gateway.dev.emulator.errors import StripeError
from gateway.dev.emulator.expand import expand, expand_list
from gateway.dev.emulator.faults import RequestFault
from gateway.dev.emulator.formdecode import decode_form
from gateway.dev.emulator.keys import (
    CONTEXT_KEY,
    EMULATOR_KEY,
    PARAMS_KEY,
    REQUEST_ID_KEY,
    STOPPING_KEY,
)
from gateway.dev.emulator.objects import API_VERSION, list_object
from gateway.dev.emulator.params import Params, get_expand, get_str
from gateway.dev.emulator.store import RequestContext

Obj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


MAX_BODY_BYTES = 1024 * 1024


def stripe_json(obj: Obj, request: web.Request, status: int = 200) -> web.Response:
    # Stripe pretty-prints its JSON; clients must not care, but humans using curl do.
    response = web.Response(
        body=json.dumps(obj, indent=2).encode(),
        status=status,
        content_type="application/json",
    )
    response.headers["Request-Id"] = request[REQUEST_ID_KEY]
    response.headers["Stripe-Version"] = API_VERSION
    return response


def _error_response(error: StripeError, request: web.Request) -> web.Response:
    response = stripe_json(error.body(), request, status=error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="Stripe"'
    if error.status == 500 and _is_keyed(request):
        # The 500 is kept under the key: retrying with it only replays the same answer.
        response.headers["Stripe-Should-Retry"] = "false"
    return response


def _is_keyed(request: web.Request) -> bool:
    return request.method == "POST" and bool(request.headers.get("Idempotency-Key"))


def _api_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic":
        # ``curl -u sk_test_...:`` sends the key as the basic-auth user name, as Stripe allows.
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0]
    return None


def _authenticate(request: web.Request) -> None:
    key = _api_key(request)
    if not key:
        raise StripeError(
            401,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').",
        )
    if not key.startswith("sk_"):
        shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
        raise StripeError(401, "invalid_request_error", f"Invalid API Key provided: {shown}")


async def _decode_params(request: web.Request) -> Params:
    if request.method == "GET" or request.method == "DELETE":
        return decode_form(request.query_string)
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise StripeError.invalid("Request body too large.")
    body = await request.read()
    if len(body) > MAX_BODY_BYTES:
        raise StripeError.invalid("Request body too large.")
    content_type = request.content_type
    if body and content_type not in ("application/x-www-form-urlencoded", ""):
        raise StripeError.invalid(
            "Invalid request: the v1 API expects application/x-www-form-urlencoded bodies."
        )
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise StripeError.invalid("Request body is not valid UTF-8.") from exc
    params = decode_form(text)
    # Clients may also put parameters in the query string of a POST; Stripe merges them.
    if request.query_string:
        params = {**decode_form(request.query_string), **params}
    return params


def _drop_connection(request: web.Request) -> web.Response:
    """Close the TCP connection without answering: the client sees a disconnect."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # aiohttp still wants a response object; it cannot be written to the closed transport.
    return web.Response(status=499)


async def _processing_time(request: web.Request, fault: RequestFault = RequestFault.NONE) -> None:
    """Injected latency, cut short when the server shuts down so that stopping never waits
    for a slow fault; then, for a held request, the wait until a test releases it (every held
    request is released when the server shuts down)."""
    emulator = request.config_dict[EMULATOR_KEY]
    if fault is RequestFault.HOLD:
        await emulator.held.hold()
    seconds = emulator.fault_decider.latency_for(request.path)
    if seconds <= 0:
        return
    stopping = request.config_dict[STOPPING_KEY]
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return


@web.middleware
async def stripe_edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    emulator = request.config_dict[EMULATOR_KEY]
    idempotency_key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    emulator.request_log.append((request.method, request.path, idempotency_key))
    fault = RequestFault.NONE
    try:
        _authenticate(request)
        fault = emulator.fault_decider.for_request(request.path)
        if fault is RequestFault.DROP:
            await _processing_time(request)
            return _drop_connection(request)
        if fault is RequestFault.FAIL:
            await _processing_time(request)
            error = StripeError.api_error()
            if idempotency_key:
                await _keep_server_error(request, idempotency_key, error)
            raise error
        params = await _decode_params(request)
        request[PARAMS_KEY] = params
        request[CONTEXT_KEY] = RequestContext(request[REQUEST_ID_KEY], idempotency_key)
        # Sessions past their deadline expire before anything can observe them.
        emulator.expire_due_sessions()
        if idempotency_key:
            response = await _idempotent(request, handler, idempotency_key, params, fault)
        else:
            response = await _run(request, handler, fault)
            if fault is RequestFault.FAIL_AFTER_APPLY:
                raise StripeError.api_error()
    except StripeError as error:
        response = _error_response(error, request)
    if idempotency_key:
        response.headers["Idempotency-Key"] = idempotency_key
    if fault is RequestFault.DROP_AFTER_APPLY:
        return _drop_connection(request)
    return response


async def _run(request: web.Request, handler: Handler, fault: RequestFault) -> web.StreamResponse:
    """Run the handler, then wait out the injected latency (and a hold, if one was asked for).

    The latency stands for processing time after the change is made: a caller that times out
    may still have created an object (as with a slow Stripe), and a second request with the same
    idempotency key arrives while the first still holds the key.
    """
    try:
        response = await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        error = _unrecognized(request)
    except StripeError as exc:
        error = exc
    else:
        await _processing_time(request, fault)
        return response
    await _processing_time(request, fault)
    raise error


def _unrecognized(request: web.Request) -> StripeError:
    return StripeError(
        404,
        "invalid_request_error",
        f"Unrecognized request URL ({request.method}: {request.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )


async def _keep_server_error(request: web.Request, key: str, error: StripeError) -> None:
    """Stripe saves the result of a keyed POST once its endpoint began, "regardless of what
    they were", 500s included, and replays it for 24 hours (docs: error-low-level). A key that
    already holds an answer, is in use, or came with undecodable parameters keeps nothing."""
    store = request.config_dict[EMULATOR_KEY].idempotency
    try:
        params = await _decode_params(request)
        if store.in_use(key) or store.lookup(key, request.method, request.path, params):
            return
    except StripeError:
        return
    store.store(
        key,
        method=request.method,
        path=request.path,
        params=params,
        status=error.status,
        body=json.dumps(error.body(), indent=2).encode(),
        request_id=request[REQUEST_ID_KEY],
    )


async def _idempotent(
    request: web.Request, handler: Handler, key: str, params: Params, fault: RequestFault
) -> web.StreamResponse:
    """Shielded: once a keyed request has started it finishes and records its result even if
    the client goes away and the server cancels the handler (as aiohttp's test server does).
    Otherwise a retry with the same key would apply the change a second time, which Stripe
    never does."""
    outcome = await asyncio.shield(_idempotent_unshielded(request, handler, key, params, fault))
    if isinstance(outcome, StripeError):
        raise outcome
    return outcome


async def _idempotent_unshielded(
    request: web.Request, handler: Handler, key: str, params: Params, fault: RequestFault
) -> web.StreamResponse | StripeError:
    # Errors are returned, not raised: if the caller was cancelled nobody would retrieve them.
    try:
        return await _idempotent_serialized(request, handler, key, params, fault)
    except StripeError as error:
        return error


async def _idempotent_serialized(
    request: web.Request, handler: Handler, key: str, params: Params, fault: RequestFault
) -> web.StreamResponse:
    """Replay what the key holds; else run the request holding the key, so that another
    request with it meanwhile gets Stripe's 409 ``idempotency_key_in_use``."""
    store = request.config_dict[EMULATOR_KEY].idempotency
    stored = store.lookup(key, request.method, request.path, params)
    if stored is not None:
        replay = web.Response(
            body=stored.body, status=stored.status, content_type="application/json"
        )
        replay.headers["Request-Id"] = stored.request_id
        replay.headers["Stripe-Version"] = API_VERSION
        replay.headers["Idempotent-Replayed"] = "true"
        if stored.status >= 500:
            replay.headers["Stripe-Should-Retry"] = "false"
        return replay
    async with store.claim(key):
        response = await _run(request, handler, fault)
        if fault is RequestFault.FAIL_AFTER_APPLY:
            # Applied, yet answered (and remembered) as a 500.
            response = _error_response(StripeError.api_error(), request)
        # Successful results and 500s are kept (injected 500s before applying, by
        # ``_keep_server_error``): a request refused by validation can be retried with the same
        # key and succeed.
        if isinstance(response, web.Response) and (
            200 <= response.status < 300 or response.status == 500
        ):
            body = response.body
            assert isinstance(body, bytes)
            store.store(
                key,
                method=request.method,
                path=request.path,
                params=params,
                status=response.status,
                body=body,
                request_id=request[REQUEST_ID_KEY],
            )
        return response


# Handlers.


def _params(request: web.Request) -> Params:
    return request[PARAMS_KEY]


def _checked(request: web.Request, spec: schema.Spec) -> Params:
    """The request's parameters, after refusing any the endpoint does not know."""
    params = request[PARAMS_KEY]
    schema.check_known(params, spec)
    return params


def _ctx(request: web.Request) -> RequestContext:
    return request[CONTEXT_KEY]


def _respond(request: web.Request, obj: Obj) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    paths = get_expand(_params(request))
    if obj.get("object") == "checkout.session" and "line_items" in paths:
        extras = emulator.checkout.line_items(obj["id"])
        url = f"/v1/checkout/sessions/{obj['id']}/line_items"
        obj = {**obj, "line_items": list_object(extras, has_more=False, url=url)}
        paths = [p for p in paths if p != "line_items"]
    return stripe_json(expand(obj, paths, emulator.store.lookup), request)


def _respond_list(request: web.Request, listing: Obj) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    paths = get_expand(_params(request))
    return stripe_json(expand_list(listing, paths, emulator.store.lookup), request)


async def create_session(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    params = _checked(request, schema.CREATE_SESSION)
    return _respond(request, emulator.checkout.create(params, _ctx(request)))


async def retrieve_session(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    _checked(request, schema.RETRIEVE)
    return _respond(request, emulator.checkout.retrieve(request.match_info["id"]))


async def list_sessions(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    params = _checked(request, schema.LIST_SESSIONS)
    return _respond_list(request, emulator.checkout.list_page(params))


async def session_line_items(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    _checked(request, schema.LIST_LINE_ITEMS)
    session_id = request.match_info["id"]
    items = emulator.checkout.line_items(session_id)
    url = f"/v1/checkout/sessions/{session_id}/line_items"
    return stripe_json(list_object(items, has_more=False, url=url), request)


async def expire_session(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    _checked(request, schema.RETRIEVE)
    return _respond(request, emulator.checkout.expire(request.match_info["id"], _ctx(request)))


async def retrieve_payment_intent(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    _checked(request, schema.RETRIEVE_PAYMENT_INTENT)
    return _respond(request, emulator.store.payment_intent(request.match_info["id"]))


async def list_payment_intents(request: web.Request) -> web.Response:
    """``GET /v1/payment_intents``: ``created`` ranges (and ``customer``: the emulator makes no
    customers, so a customer filter matches nothing), newest first."""
    emulator = request.config_dict[EMULATOR_KEY]
    params = _checked(request, schema.LIST_PAYMENT_INTENTS)
    in_range = listing.created_filter(params)
    customer = get_str(params, "customer")

    def keep(intent: Obj) -> bool:
        return in_range(intent) and (customer is None or intent.get("customer") == customer)

    intents = list(emulator.store.payment_intents.values())[::-1]
    page = listing.paginate(intents, keep, params, url="/v1/payment_intents")
    return _respond_list(request, page)


async def list_refunds(request: web.Request) -> web.Response:
    """``GET /v1/refunds``: by ``payment_intent`` or ``charge``, ``created`` ranges, newest
    first."""
    emulator = request.config_dict[EMULATOR_KEY]
    params = _checked(request, schema.LIST_REFUNDS)
    in_range = listing.created_filter(params)
    payment_intent = get_str(params, "payment_intent")
    charge = get_str(params, "charge")

    def keep(refund: Obj) -> bool:
        return (
            in_range(refund)
            and (payment_intent is None or refund["payment_intent"] == payment_intent)
            and (charge is None or refund["charge"] == charge)
        )

    refunds = list(emulator.store.refunds.values())[::-1]
    return _respond_list(request, listing.paginate(refunds, keep, params, url="/v1/refunds"))


async def retrieve_charge(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    _checked(request, schema.RETRIEVE)
    return _respond(request, emulator.store.charge(request.match_info["id"]))


async def create_refund(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    params = _checked(request, schema.CREATE_REFUND)
    return _respond(request, emulator.payments.create_refund(params, _ctx(request)))


async def retrieve_refund(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    _checked(request, schema.RETRIEVE)
    return _respond(request, emulator.store.refund(request.match_info["id"]))


async def retrieve_dispute(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    _checked(request, schema.RETRIEVE)
    return _respond(request, emulator.store.dispute(request.match_info["id"]))


async def list_events(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    params = _checked(request, schema.LIST_EVENTS)
    return _respond_list(request, emulator.event_log.list_page(params))


async def retrieve_event(request: web.Request) -> web.Response:
    emulator = request.config_dict[EMULATOR_KEY]
    _checked(request, schema.RETRIEVE)
    return _respond(request, emulator.event_log.get(request.match_info["id"]))


async def unrecognized(request: web.Request) -> web.Response:
    raise _unrecognized(request)


def create_api_app() -> web.Application:
    """The ``/v1`` sub-application (mounted by ``create_emulator_app``)."""
    app = web.Application(middlewares=[stripe_edge], client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/checkout/sessions", create_session)
    app.router.add_get("/checkout/sessions", list_sessions)
    app.router.add_get("/checkout/sessions/{id}", retrieve_session)
    app.router.add_get("/checkout/sessions/{id}/line_items", session_line_items)
    app.router.add_post("/checkout/sessions/{id}/expire", expire_session)
    app.router.add_get("/payment_intents", list_payment_intents)
    app.router.add_get("/payment_intents/{id}", retrieve_payment_intent)
    app.router.add_get("/charges/{id}", retrieve_charge)
    app.router.add_post("/refunds", create_refund)
    app.router.add_get("/refunds", list_refunds)
    app.router.add_get("/refunds/{id}", retrieve_refund)
    app.router.add_get("/disputes/{id}", retrieve_dispute)
    app.router.add_get("/events", list_events)
    app.router.add_get("/events/{id}", retrieve_event)
    # Anything else under /v1 gets Stripe's "Unrecognized request URL" instead of aiohttp's 404.
    app.router.add_route("*", "/{tail:.*}", unrecognized)
    return app
