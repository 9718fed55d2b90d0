"""Every client mistake: a 4xx with a message naming the input, what was expected and what
came; never a 500, never a traceback; the server answers a good request afterwards."""

from __future__ import annotations

import json

import pytest

GOOD = {
    "lr": {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5, 3, 1, 0.2]}]},
    "rf": {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP64", "data": [0] * 6}]},
    "ridge": {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
    "hgb": {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]},
}


def t(name, shape, datatype, data, **extra):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data, **extra}


def house(area=("FP64", [50.0]), bedrooms=("INT64", [2]), location=("BYTES", ["north"])):
    inputs = []
    for name, spec in (("area", area), ("bedrooms", bedrooms), ("location", location)):
        if spec is not None:
            inputs.append(t(name, [len(spec[1])], spec[0], spec[1]))
    return {"inputs": inputs}


GOOD["house"] = house()

# (id, model, raw body or JSON body, extra headers, status, message fragments)
V2_CASES = [
    ("empty-body", "lr", b"", {}, 400, ["request body is empty"]),
    ("whitespace-body", "lr", b"  \n", {}, 400, ["request body is empty"]),
    ("not-json", "lr", b"{inputs: nope", {}, 400, ["not valid JSON"]),
    ("json-array", "lr", [1, 2], {}, 400, ["must be a JSON object", "list"]),
    ("no-inputs", "lr", {}, {}, 400, ["needs 'inputs'"]),
    ("inputs-not-list", "lr", {"inputs": {"a": 1}}, {}, 400, ["needs 'inputs'"]),
    ("input-not-object", "lr", {"inputs": [3]}, {}, 400, ["inputs[0] must be an object"]),
    (
        "input-no-name",
        "lr",
        {"inputs": [{"shape": [1], "datatype": "FP64", "data": [1]}]},
        {},
        400,
        ["inputs[0] needs a 'name'"],
    ),
    (
        "unknown-datatype",
        "lr",
        {"inputs": [t("x", [1, 4], "FLOAT", [1, 2, 3, 4])]},
        {},
        400,
        ["input 'x'", "'FLOAT' is not a V2 datatype", "FP64"],
    ),
    (
        "shape-not-list",
        "lr",
        {"inputs": [t("x", "1,4", "FP64", [1, 2, 3, 4])]},
        {},
        400,
        ["input 'x'", "shape must be a list of non-negative integers"],
    ),
    (
        "negative-shape",
        "lr",
        {"inputs": [t("x", [-1, 4], "FP64", [1, 2, 3, 4])]},
        {},
        400,
        ["shape must be a list of non-negative integers"],
    ),
    (
        "no-data",
        "lr",
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64"}]},
        {},
        400,
        ["input 'x' has neither 'data' nor binary_data_size"],
    ),
    (
        "data-length-vs-shape",
        "lr",
        {"inputs": [t("x", [1, 4], "FP64", [1, 2, 3])]},
        {},
        400,
        ["input 'x'", "shape [1, 4] holds 4 values but the data has 3"],
    ),
    (
        "ragged-data",
        "lr",
        {"inputs": [t("x", [2, 4], "FP64", [[1, 2, 3, 4], [1, 2]])]},
        {},
        400,
        ["input 'x'"],
    ),
    (
        "wrong-feature-count",
        "lr",
        {"inputs": [t("x", [1, 3], "FP64", [1, 2, 3])]},
        {},
        400,
        ["input 'x'", "expected 4 features per row", "[1, 3]"],
    ),
    (
        "one-d-tensor",
        "rf",
        {"inputs": [t("x", [6], "FP64", [0] * 6)]},
        {},
        400,
        ["expected a 2-D tensor [N, 6]", "send shape [1, 6]"],
    ),
    (
        "bytes-for-numeric-model",
        "lr",
        {"inputs": [t("x", [1, 4], "BYTES", ["a", "b", "c", "d"])]},
        {},
        400,
        ["input 'x'", "expects numbers", "got BYTES"],
    ),
    (
        "strings-in-fp64-data",
        "rf",
        {"inputs": [t("x", [1, 6], "FP64", [1, 2, "three", 4, 5, 6])]},
        {},
        400,
        ["input 'x' has datatype FP64", "numbers", "'three'"],
    ),
    (
        "a-boolean-among-fp64-data",
        "rf",
        {"inputs": [t("x", [1, 6], "FP64", [1.5, 2, True, 4, 5, 6])]},
        {},
        400,
        ["input 'x' has datatype FP64", "numbers", "found True"],
    ),
    (
        "bool-data-for-int",
        "rf",
        {"inputs": [t("x", [1, 6], "BOOL", [1, 2, 3, 4, 5, 6])]},
        {},
        400,
        ["input 'x' has datatype BOOL", "booleans"],
    ),
    (
        "numbers-in-bytes-data",
        "house",
        house(location=("BYTES", [7])),
        {},
        400,
        ["input 'location' is BYTES", "strings", "7"],
    ),
    (
        "missing-feature",
        "house",
        house(location=None),
        {},
        400,
        ["missing features: location", "area, bedrooms, location"],
    ),
    (
        "unknown-feature",
        "house",
        {"inputs": [*house()["inputs"][:2], t("city", [1], "BYTES", ["north"])]},
        {},
        400,
        ["missing features: location", "unknown inputs: city"],
    ),
    (
        "duplicate-input",
        "house",
        {"inputs": house()["inputs"] + [t("area", [1], "FP64", [1.0])]},
        {},
        400,
        ["inputs named more than once: area"],
    ),
    (
        "string-feature-gets-number",
        "house",
        house(location=("INT64", [3])),
        {},
        400,
        ["input 'location'", "trained on strings", "got INT64"],
    ),
    (
        "numeric-feature-gets-bytes",
        "house",
        house(area=("BYTES", ["big"])),
        {},
        400,
        ["input 'area'", "expects numbers", "got BYTES"],
    ),
    (
        "unequal-rows",
        "house",
        house(area=("FP64", [50.0, 60.0])),
        {},
        400,
        ["input 'bedrooms' has 1 rows but 'area' has 2"],
    ),
    (
        "feature-tensor-2d",
        "house",
        {"inputs": [t("area", [1, 2], "FP64", [1, 2]), *house()["inputs"][1:]]},
        {},
        400,
        ["input 'area'", "shape [N] or [N, 1]", "[1, 2]"],
    ),
    (
        "mixed-model-2d-tensor",
        "house",
        {"inputs": [t("x", [1, 3], "FP64", [1, 2, 3])]},
        {},
        400,
        ["mixes numeric and string features", "one [N] tensor per feature"],
    ),
    (
        "unknown-category",
        "house",
        house(location=("BYTES", ["mars"])),
        {},
        400,
        ["the model rejected the input", "mars"],
    ),
    (
        "nan-for-model-without-nan",
        "lr",
        b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,NaN,2,3]}]}',
        {},
        400,
        ["input 'x'", "cannot take NaN or infinity", "nan"],
    ),
    (
        "null-for-model-without-nan",
        "lr",
        {"inputs": [t("x", [1, 4], "FP64", [1, None, 2, 3])]},
        {},
        400,
        ["cannot take NaN or infinity"],
    ),
    (
        "infinity",
        "lr",
        b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1,2,3,-Infinity]}]}',
        {},
        400,
        ["cannot take NaN or infinity", "-inf"],
    ),
    (
        "huge-fp32-overflows",
        "lr",
        {"inputs": [t("x", [1, 4], "FP32", [1e300, 1, 1, 1])]},
        {},
        400,
        ["input 'x'", "too large for its datatype"],
    ),
    (
        "huge-int64",
        "rf",
        {"inputs": [t("x", [1, 6], "INT64", [2**70, 0, 0, 0, 0, 0])]},
        {},
        400,
        ["input 'x'", "INT64"],
    ),
    (
        "nan-inf-to-hgb-rejected-by-model",
        "hgb",
        {"inputs": [t("x", [1, 3], "FP64", [1, 2, 3])]},
        {},
        400,
        ["expected 4 features per row"],
    ),
    (
        "unknown-output",
        "lr",
        {**GOOD["lr"], "outputs": [{"name": "probabilities"}]},
        {},
        400,
        ["output 'probabilities' is not a known output", "valid outputs: predict, predict_proba"],
    ),
    (
        "predict-proba-on-regressor",
        "ridge",
        {**GOOD["ridge"], "outputs": [{"name": "predict_proba"}]},
        {},
        400,
        ["output 'predict_proba' is not offered by this Ridge", "valid outputs: predict"],
    ),
    (
        "outputs-not-list",
        "lr",
        {**GOOD["lr"], "outputs": "predict"},
        {},
        400,
        ["'outputs' must be a list"],
    ),
    (
        "parameters-not-object",
        "lr",
        {**GOOD["lr"], "parameters": [1]},
        {},
        400,
        ["'parameters' must be an object"],
    ),
    (
        "binary-header-not-int",
        "lr",
        GOOD["lr"],
        {"inference-header-content-length": "abc"},
        400,
        ["inference-header-content-length must be an integer", "'abc'"],
    ),
    (
        "binary-header-too-long",
        "lr",
        GOOD["lr"],
        {"inference-header-content-length": "99999"},
        400,
        ["is 99999 but the body has"],
    ),
    ("binary-size-past-end", "lr", None, {}, 400, ["binary_data_size 32", "does not fit"]),
    ("binary-wrong-length", "lr", None, {}, 400, ["needs 32 bytes of binary data, got 16"]),
]


def binary_body(size_claimed: int, payload: bytes) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 4],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": size_claimed},
                }
            ]
        }
    ).encode()
    return head + payload, {"inference-header-content-length": str(len(head))}


@pytest.mark.parametrize(
    "model, body, headers, status, fragments",
    [case[1:] for case in V2_CASES],
    ids=[case[0] for case in V2_CASES],
)
def test_v2_bad_input(servers, request, model, body, headers, status, fragments):
    server = servers[model]
    case = request.node.callspec.id
    if case == "binary-size-past-end":
        body, headers = binary_body(32, b"\0" * 16)
    elif case == "binary-wrong-length":
        body, headers = binary_body(16, b"\0" * 16)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = server.post(f"/v2/models/{model}/infer", content=content, headers=headers)
    assert_error(response, status, fragments)
    assert server.infer(GOOD[model]).status_code == 200  # still serving


V1_CASES = [
    ("v1-empty", "lr", b"", 400, ["request body is empty"]),
    ("v1-not-json", "lr", b"[[1,2", 400, ["not valid JSON"]),
    ("v1-no-instances", "lr", {"rows": [[1, 2, 3, 4]]}, 400, ["needs 'instances'"]),
    (
        "v1-instances-not-list",
        "lr",
        {"instances": 5},
        400,
        ["'instances' must be a non-empty list"],
    ),
    (
        "v1-row-length",
        "lr",
        {"instances": [[1, 2, 3]]},
        400,
        ["instances[0] has 3 values; the model expects 4"],
    ),
    (
        "v1-mixed-row-kinds",
        "lr",
        {"instances": [[1, 2, 3, 4], {"a": 1}]},
        400,
        ["all lists", "or all objects"],
    ),
    (
        "v1-record-missing",
        "house",
        {"instances": [{"area": 50, "bedrooms": 2}]},
        400,
        ["missing features: location"],
    ),
    (
        "v1-record-unknown",
        "house",
        {"instances": [{"area": 50, "bedrooms": 2, "location": "north", "pool": True}]},
        400,
        ["unknown keys: pool"],
    ),
    (
        "v1-string-for-number",
        "house",
        {"instances": [["big", 2, "north"]]},
        400,
        ["feature 'area' takes numbers", "'big'"],
    ),
    (
        "v1-number-for-string",
        "house",
        {"instances": [[50, 2, 3]]},
        400,
        ["feature 'location' takes strings", "3"],
    ),
    (
        "v1-strings-unnamed-model",
        "rf",
        {"instances": [["a"] * 6]},
        400,
        ["'instances' must hold numbers"],
    ),
    (
        "v1-unknown-method",
        "ridge",
        {"instances": [[1, 2, 3]], "parameters": {"method": "predict_proba"}},
        400,
        ["not offered by this Ridge", "valid outputs: predict"],
    ),
    ("v1-nan", "lr", {"instances": [[1, None, 2, 3]]}, 400, ["cannot take NaN"]),
]


@pytest.mark.parametrize(
    "model, body, status, fragments",
    [case[1:] for case in V1_CASES],
    ids=[case[0] for case in V1_CASES],
)
def test_v1_bad_input(servers, model, body, status, fragments):
    server = servers[model]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = server.post(f"/v1/models/{model}:predict", content=content)
    assert_error(response, status, fragments)
    assert server.infer(GOOD[model]).status_code == 200


def test_unknown_model_is_404(servers):
    response = servers["lr"].post("/v2/models/nope/infer", json=GOOD["lr"])
    assert_error(response, 404, ["model 'nope' is not served here", "served models: lr"])
    response = servers["lr"].post("/v1/models/nope:predict", json={"instances": [[1, 2, 3, 4]]})
    assert_error(response, 404, ["model 'nope'"])


def assert_error(response, status, fragments):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    for fragment in fragments:
        assert fragment in body["error"], (fragment, body["error"])
    assert "Traceback" not in response.text and 'File "' not in response.text
