"""The served OpenAPI document stays true: every admin route is in it with its method, every
documented operation exists, and real answers match the documented schemas."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from gateway.web.keys import SETTINGS
from tests.admin.support import AdminHarness, start_admin_harness


@pytest.fixture
async def h(aiohttp_server: Any, aiohttp_client: Any, sqlite_url: str) -> AdminHarness:
    return await start_admin_harness(aiohttp_server, aiohttp_client, sqlite_url)


def admin_routes(app: web.Application) -> set[tuple[str, str, str]]:
    """(method, path template, route name) of every route mounted under /admin/api."""
    found: set[tuple[str, str, str]] = set()
    for resource in app.router.resources():
        if (
            not isinstance(resource, web.PrefixedSubAppResource)
            or resource.canonical != "/admin/api"
        ):
            continue  # the console (/admin) is pages, not the API
        for sub in resource._app.router.resources():
            for route in sub:
                if route.method == "HEAD":
                    continue
                found.add((route.method.lower(), sub.canonical, route.name or ""))
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (method, path, op["operationId"])
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }


class SchemaError(AssertionError):
    pass


def check(value: Any, schema: dict[str, Any], doc: dict[str, Any], where: str = "$") -> None:
    """A small validator for the subset of JSON Schema the document uses."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return check(value, doc["components"]["schemas"][name], doc, where)
    for part in schema.get("allOf", []):
        check(value, part, doc, where)
    if "oneOf" in schema:
        errors = []
        for option in schema["oneOf"]:
            try:
                check(value, option, doc, where)
            except SchemaError as exc:
                errors.append(exc)
        if len(errors) != len(schema["oneOf"]) - 1:
            raise SchemaError(f"{where}: matches {len(schema['oneOf']) - len(errors)} of oneOf")
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        python = {
            "string": str,
            "integer": int,
            "number": (int, float),
            "boolean": bool,
            "object": dict,
            "array": list,
            "null": type(None),
        }
        ok = any(
            isinstance(value, python[n])
            and not (n in ("integer", "number") and isinstance(value, bool))
            for n in names
        )
        if not ok:
            raise SchemaError(f"{where}: {value!r} is not {names}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise SchemaError(f"{where}: missing {key}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                check(value[key], sub, doc, f"{where}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                check(item, extra, doc, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check(item, schema["items"], doc, f"{where}[{index}]")
    return None


async def checked(
    h: AdminHarness, doc: dict[str, Any], method: str, path: str, template: str, **kwargs: Any
) -> Any:
    response = await h.api(method.upper(), path, **kwargs)
    body = await response.json()
    responses = doc["paths"]["/admin/api" + template][method]["responses"]
    assert str(response.status) in responses, (method, path, response.status, body)
    spec = responses[str(response.status)]
    if "$ref" in spec:
        spec = doc["components"]["responses"]["Error"]
    schema = spec.get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        check(body, schema, doc)
    return body


class TestOpenApi:
    async def test_routes_and_document_match_exactly(self, h: AdminHarness) -> None:
        doc = await (await h.api("GET", "/openapi.json", key=None)).json()
        assert admin_routes(h.app) == documented(doc)

    async def test_every_schema_reference_resolves(self, h: AdminHarness) -> None:
        doc = await (await h.api("GET", "/openapi.json", key=None)).json()
        refs: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if "$ref" in node:
                    refs.append(node["$ref"])
                for child in node.values():
                    walk(child)
            elif isinstance(node, list):
                for child in node:
                    walk(child)

        walk(doc)
        for ref in refs:
            _, section, name = ref.removeprefix("#/").split("/")
            assert name in doc["components"][section], ref

    async def test_answers_match_the_documented_schemas(self, h: AdminHarness) -> None:
        doc = await (await h.api("GET", "/openapi.json", key=None)).json()
        new = {"email": "a@example.com", "name": "A", "items": ["Fee=10.00"], "ref": "o/1"}
        created = await checked(h, doc, "post", "/links", "/links", json=new)
        link_id = created["id"]
        again = await checked(h, doc, "post", "/links", "/links", json=new)
        assert again["existing"] is True and again["id"] == link_id
        link = await h.issue(ref="o/2")
        await h.pay_flow(link)
        await checked(h, doc, "post", "/links", "/links", json={"email": "x"})
        await checked(h, doc, "post", "/links", "/links", json={**new, "send": True})
        csv = "email,name,ref,amount\nb@example.com,B,o/3,5\nbad,,o/4,x\n"
        for params in ({}, {"dry_run": "1"}, {"skip_invalid": "1"}):
            await checked(
                h,
                doc,
                "post",
                "/links/bulk",
                "/links/bulk",
                data=csv,
                headers={"Content-Type": "text/csv"},
                params=params,
            )
        await checked(h, doc, "post", "/links/bulk", "/links/bulk", json={"rows": 1})
        page = await checked(h, doc, "get", "/links", "/links", params={"limit": 1})
        params = {"limit": 1, "cursor": page["next_cursor"]}
        await checked(h, doc, "get", "/links", "/links", params=params)
        await checked(h, doc, "get", "/links", "/links", params={"status": "failed"})
        await checked(h, doc, "get", "/links", "/links", params={"status": "nope"})
        await checked(h, doc, "get", "/links", "/links", params={"cursor": "nope"})
        await checked(h, doc, "get", f"/links/{link.id}", "/links/{id}")
        await checked(h, doc, "get", "/links/lk_doesnotexist", "/links/{id}")
        await checked(h, doc, "post", f"/links/{link_id}/resend", "/links/{id}/resend")
        await checked(h, doc, "post", f"/links/{link_id}/revoke", "/links/{id}/revoke", json={})
        await checked(h, doc, "post", f"/links/{link_id}/resend", "/links/{id}/resend")
        await checked(h, doc, "get", "/orders", "/orders")
        await checked(h, doc, "post", "/reconcile", "/reconcile")
        await checked(h, doc, "get", "/links", "/links", key="wrong")

    async def test_the_brake_on_wrong_keys_is_documented_on_every_call(
        self, h: AdminHarness
    ) -> None:
        doc = await (await h.api("GET", "/openapi.json", key=None)).json()
        for _ in range(h.app[SETTINGS].admin.max_failures):
            assert (await h.api("GET", "/links", key="guess")).status == 401
        body = await checked(h, doc, "get", "/links", "/links", key="guess")
        assert body["error"]["code"] == "too_many_failures"
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                if path != "/admin/api/openapi.json":
                    assert "429" in operation["responses"], (method, path)

    async def test_the_locale_is_documented_as_the_offered_ones_or_null_and_answers_match(
        self, h: AdminHarness
    ) -> None:
        doc = await (await h.api("GET", "/openapi.json", key=None)).json()
        schemas = doc["components"]["schemas"]
        for name in ("NewLink", "IssuedLink", "Link", "BulkRow"):
            locale = schemas[name]["properties"]["locale"]
            assert locale["enum"] == ["en", "es", "pt-BR", "fr", None], name
            assert locale["type"] == ["string", "null"], name
        assert "locale" in schemas["Link"]["required"]
        described = schemas["NewLink"]["properties"]["locale"]["description"]
        assert "pt_br" in described and "browser" in described
        assert "checkout.default_locale" in described
        new = {"email": "a@example.com", "name": "A", "items": ["Fee=10.00"]}
        for locale in ("pt_br", None):
            created = await checked(
                h, doc, "post", "/links", "/links", json={**new, "locale": locale}
            )
            assert created["locale"] == ("pt-BR" if locale else None)
            path = f"/links/{created['id']}"
            assert (await checked(h, doc, "get", path, "/links/{id}"))["locale"] == created[
                "locale"
            ]
        refused = await checked(h, doc, "post", "/links", "/links", json={**new, "locale": "de"})
        assert "locale" in refused["error"]["fields"]
        csv = "email,name,ref,amount,locale\nb@example.com,B,o/3,5,es\nc@example.com,C,o/4,5,\n"
        report = await checked(
            h,
            doc,
            "post",
            "/links/bulk",
            "/links/bulk",
            data=csv,
            headers={"Content-Type": "text/csv"},
        )
        assert [r["locale"] for r in report["rows"]] == ["es", None]
