"""The inference lane in-process: which requests skip the app, with which path params."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from predictor.lane import InferenceLane, route_path


class Endpoints:
    """Records the endpoint called and the request's path params."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], bytes]] = []

    async def v2_infer(self, request: Request) -> Response:
        self.calls.append(("v2_infer", dict(request.path_params), await request.body()))
        return Response(b'{"v2":1}', media_type="application/json")

    async def v1_predict(self, request: Request) -> Response:
        self.calls.append(("v1_predict", dict(request.path_params), await request.body()))
        return Response(b'{"v1":1}', media_type="application/json")


class App:
    """Stands for the FastAPI app: records the scopes it is given."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await Response(b"app", status_code=404)(scope, receive, send)


def call(lane: InferenceLane, method: str, path: str, root_path: str = "") -> list[dict]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": root_path,
        "headers": [],
        "query_string": b"",
    }
    sent: list[dict] = []
    body = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict:
        return body.pop(0) if body else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(lane(scope, receive, send))
    return sent


@pytest.fixture
def parts() -> tuple[InferenceLane, App, Endpoints]:
    app, endpoints = App(), Endpoints()
    return InferenceLane(app, endpoints), app, endpoints


@pytest.mark.parametrize(
    ("path", "endpoint", "params"),
    [
        ("/v2/models/iris/infer", "v2_infer", {"model_name": "iris"}),
        (
            "/v2/models/iris/versions/7/infer",
            "v2_infer",
            {"model_name": "iris", "model_version": "7"},
        ),
        ("/v1/models/iris:predict", "v1_predict", {"model_name": "iris"}),
        ("/v1/models/a:b:predict", "v1_predict", {"model_name": "a:b"}),
    ],
)
def test_inference_posts_go_straight_to_the_endpoints(parts, path, endpoint, params) -> None:
    lane, app, endpoints = parts
    sent = call(lane, "POST", path)
    assert endpoints.calls == [(endpoint, params, b"{}")]
    assert app.scopes == []
    assert sent[0]["status"] == 200
    assert sent[1]["body"] in (b'{"v2":1}', b'{"v1":1}')


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/iris/infer"),  # the app answers 405 as before
        ("POST", "/v2/models/iris/infer/"),  # the app's trailing-slash handling
        ("POST", "/v2/models/a/b/infer"),
        ("POST", "/v2/models//infer"),
        ("POST", "/v2/models/iris"),
        ("POST", "/v2/repository/index"),
        ("GET", "/v2/health/ready"),
        ("POST", "/v1/models/:predict"),
        ("POST", "/v1/models/iris:explain"),
    ],
)
def test_everything_else_goes_to_the_app(parts, method, path) -> None:
    lane, app, endpoints = parts
    sent = call(lane, method, path)
    assert endpoints.calls == []
    assert [s["path"] for s in app.scopes] == [path]
    assert sent[0]["status"] == 404 and sent[1]["body"] == b"app"


def test_lifespan_goes_to_the_app(parts) -> None:
    lane, app, endpoints = parts

    async def receive() -> dict:
        return {"type": "lifespan.startup"}

    async def send(message: dict) -> None:
        return None

    asyncio.run(lane({"type": "lifespan"}, receive, send))
    assert [s["type"] for s in app.scopes] == ["lifespan"]
    assert endpoints.calls == []


def test_the_root_path_is_stripped_as_the_router_does(parts) -> None:
    lane, _app, endpoints = parts
    call(lane, "POST", "/serving/v2/models/iris/infer", root_path="/serving")
    assert endpoints.calls == [("v2_infer", {"model_name": "iris"}, b"{}")]
    assert route_path({"path": "/serving", "root_path": "/serving"}) == ""
    assert route_path({"path": "/servingx/v2", "root_path": "/serving"}) == "/servingx/v2"
    assert route_path({"path": "/v2/x"}) == "/v2/x"


def test_the_rest_server_serves_the_lane_in_front_of_kserves_app() -> None:
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from uvicorn.importer import import_from_string

    from predictor.server import APP, RestServer

    registry = ModelRepository()
    rest = RestServer(
        app=APP,
        data_plane=DataPlane(model_registry=registry),
        model_repository_extension=ModelRepositoryExtension(model_registry=registry),
        http_port=0,
    )
    rest.create_application()
    lane = rest.config.app
    assert isinstance(lane, InferenceLane)
    assert lane.app is import_from_string(APP)
    rest.create_application()  # a second call (a restarted worker) keeps the same lane
    assert rest.config.app is lane


def test_an_exception_escaping_an_endpoint_is_a_json_error() -> None:
    class Failing(Endpoints):
        async def v2_infer(self, request: Request) -> Response:
            raise RuntimeError("boom")

    app = App()
    sent = call(InferenceLane(app, Failing()), "POST", "/v2/models/iris/infer")
    assert sent[0]["status"] == 500
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/json"
    assert json.loads(sent[1]["body"]) == {"error": "internal error: RuntimeError: boom"}
    assert app.scopes == []
