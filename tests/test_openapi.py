"""The OpenAPI schema documents the problem answers, who needs the token, and that bodies
refuse unknown fields (API.md "Robustness of every endpoint")."""

from __future__ import annotations

PUBLIC = [("/api/products", "get"), ("/api/regions", "get"), ("/api/categories", "get"), ("/health", "get"),
          ("/ready", "get"), ("/api/auth/login", "post"), ("/api/payments/stripe/webhook", "post"), ("/metrics", "get")]


async def _schema(client) -> dict:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()


async def test_every_operation_documents_its_problems_as_problem_details(client):
    schema = await _schema(client)
    assert "ProblemDetails" in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "503" in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
            if "{" in path:
                assert "404" in responses, (method, path)
            if "requestBody" in operation:
                assert "400" in responses, (method, path)
    assert "429" in schema["paths"]["/api/auth/login"]["post"]["responses"]
    assert "409" in schema["paths"]["/api/orders"]["post"]["responses"]


async def test_public_operations_need_no_token_and_the_others_do(client):
    schema = await _schema(client)
    for path, method in PUBLIC:
        assert schema["paths"][path][method]["security"] == [], path
    orders = schema["paths"]["/api/orders"]
    assert orders["get"]["security"] == [{"BearerToken": []}]
    assert {"401", "403"} <= set(orders["get"]["responses"])


async def test_request_bodies_refuse_unknown_fields(client):
    components = (await _schema(client))["components"]["schemas"]
    assert components["OrderIn"]["additionalProperties"] is False
    assert components["LineIn"]["additionalProperties"] is False
    assert components["LoginIn"]["additionalProperties"] is False
