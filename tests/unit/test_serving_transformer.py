"""The cluster transformer's entry point: KServe's arguments, V1/V2 request and response mapping."""

from __future__ import annotations

import pytest

from workloads.serving import transformer as t
from workloads.serving.cluster import builders
from workloads.serving.local import validation


def test_rendered_transformer_runs_this_module_with_kserve_arguments() -> None:
    assert builders.TRANSFORMER_MODULE == t.__name__
    args = t.parse_args(
        [
            "--protocol",
            "v2",
            "--model_name",
            "clf",
            "--predictor_host",
            "clf-predictor.ns",
            "--http_port",
            "8080",
        ]
    )
    assert (args.model_name, args.predictor_host, args.http_port, args.protocol) == (
        "clf",
        "clf-predictor.ns",
        8080,
        "v2",
    )
    # Arguments a newer KServe may add are ignored, not fatal.
    assert t.parse_args(["--model_name", "m", "--predictor_host", "h", "--workers", "1"]).protocol == "v1"
    with pytest.raises(SystemExit):
        t.parse_args(["--model_name", "m"])


def test_v2_request_is_one_fp64_column_per_feature_in_model_order() -> None:
    names = ["b", "a"]
    rows = validation.named_records([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}], names)
    body = t.v2_request("clf", rows, names)
    assert body["parameters"] == {"content_type": "pd"}
    assert [(i["name"], i["shape"], i["datatype"], i["data"]) for i in body["inputs"]] == [
        ("b", [2], "FP64", [2.0, 4.0]),
        ("a", [2], "FP64", [1.0, 3.0]),
    ]


def test_answers_name_the_class() -> None:
    v2 = {"outputs": [{"name": "output-1", "shape": [2], "datatype": "INT64", "data": [1, 0]}]}
    assert t.labelled(t.v2_labels(v2)) == {
        "predictions": [
            {"label": "benign", "class": 1, "probability_benign": None},
            {"label": "malignant", "class": 0, "probability_benign": None},
        ]
    }
    assert t.labelled([1], [0.9])["predictions"][0]["probability_benign"] == 0.9
    with pytest.raises(ValueError, match="no outputs"):
        t.v2_labels({"outputs": []})


def test_class_names_match_the_training_data() -> None:
    from sklearn.datasets import load_breast_cancer

    assert tuple(load_breast_cancer().target_names) == t.CLASS_NAMES
