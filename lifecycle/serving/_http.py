"""JSON in and out of the REST app: a body validated as FastAPI reports errors (422, one entry per bad
field, under ``body``), answers that never hold a non-finite number, and the OpenAPI pieces of routes
that read their body themselves.

Used by :mod:`lifecycle.serving.rest`; taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from lifecycle.serving.schema import MAX_BATCH_BODY_BYTES, MAX_SINGLE_BODY_BYTES, Problem, ValidationProblem


def scoring_responses(path: str) -> dict[int | str, dict[str, Any]]:
    """Every status a scoring route answers besides 200, for its OpenAPI document."""
    limit = MAX_BATCH_BODY_BYTES if path == "/predict/batch" else MAX_SINGLE_BODY_BYTES
    retry_after = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
    return {
        413: {"model": Problem, "description": f"the request body is over {limit:,} bytes"},
        422: {"model": ValidationProblem,
              "description": "the body is not valid JSON or breaks the request schema: one entry per bad field"},
        503: {"model": Problem, "headers": retry_after,
              "description": "the model is not loaded yet, or the prediction log cannot take the request now "
                             "(behind, locked or full): nothing was answered, retry after `Retry-After` seconds"},
    }


def parse_body(model: type[BaseModel], body: bytes) -> Any:
    """Validate a JSON body against ``model``; a bad one raises FastAPI's 422 error, fields under ``body``."""
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        raise RequestValidationError([_under_body(item) for item in err.errors(include_url=False)]) from None


def _under_body(item: dict[str, Any]) -> dict[str, Any]:
    """An error located as FastAPI locates it (``["body", field]``); raw bytes echoed as text."""
    item = {**item, "loc": ("body", *item["loc"])}
    if isinstance(item.get("input"), bytes):  # a body that is not JSON at all
        item["input"] = item["input"][:200].decode("utf-8", "replace")
    return item


def json_response(content: Any) -> Response:
    return Response(json.dumps(content, allow_nan=False).encode(), media_type="application/json")


def json_request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a route that reads ``model`` from its JSON body itself."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline(schema)}}}}


async def validation_failed(request: Any, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 answer, except that a non-finite number the client sent (``1e400``, ``NaN``) is
    echoed as text: JSON cannot hold it, and the default handler fails with a 500 trying."""
    return JSONResponse({"detail": _finite(jsonable_encoder(error.errors()))}, status_code=422)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
