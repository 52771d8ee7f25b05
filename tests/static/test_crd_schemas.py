"""scripts/crd_schemas.py: the strict schemas it builds from CRDs, and that it covers every kind we use."""

from __future__ import annotations

import importlib.util

import jsonschema

from .k8s import KNOWN_CRDS, ROOT

spec = importlib.util.spec_from_file_location("crd_schemas", ROOT / "scripts" / "crd_schemas.py")
crd_schemas = importlib.util.module_from_spec(spec)
spec.loader.exec_module(crd_schemas)

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "spec": {
        "group": "example.fraud-lab.io",
        "names": {"kind": "Pipeline"},
        "versions": [{
            "name": "v1", "served": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                "spec": {"type": "object", "properties": {
                    "replicas": {"x-kubernetes-int-or-string": True},
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {"type": "string"}}},
                    "steps": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                }},
            }}},
        }],
    },
}  # fmt: skip


def test_converted_schema_is_strict_like_the_api_server(tmp_path):
    ((path, schema),) = crd_schemas.convert(CRD).items()
    assert path == "example.fraud-lab.io/pipeline_v1.json"
    validator = jsonschema.Draft7Validator(schema)
    good = {"apiVersion": "example.fraud-lab.io/v1", "kind": "Pipeline", "metadata": {"name": "x"},
            "spec": {"replicas": "50%", "config": {"anything": 1}, "steps": [{"name": "a"}]}}  # fmt: skip
    assert not list(validator.iter_errors(good))
    assert not list(validator.iter_errors({**good, "spec": {**good["spec"], "replicas": 2}}))
    bad = [
        {**good, "spec": {**good["spec"], "stpes": []}},  # unknown field: strict
        {**good, "spec": {**good["spec"], "steps": [{"nmae": "a"}]}},  # unknown field inside a list
        {**good, "kind": "Pipline"},
        {**good, "apiVersion": "example.fraud-lab.io/v2"},
        {**good, "spec": {**good["spec"], "replicas": 1.5}},
    ]
    assert all(list(validator.iter_errors(b)) for b in bad)


def test_build_covers_every_custom_resource_the_overlays_use():
    urls = " ".join(crd_schemas.PINNED_CRDS)
    plurals = {"SeldonDeployment": "seldondeployments", "ServiceMonitor": "servicemonitors", "PodMonitor": "podmonitors",
               "PrometheusRule": "prometheusrules", "AlertmanagerConfig": "alertmanagerconfigs", "WorkflowTemplate": "workflowtemplates",
               "CronWorkflow": "cronworkflows", "Workflow": "workflows", "RayJob": "rayjobs"}  # fmt: skip
    assert {kind for _, kind in KNOWN_CRDS} == set(plurals)
    for kind, plural in plurals.items():
        assert f"{plural}.yaml" in urls, kind
