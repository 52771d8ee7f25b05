"""Lab 10's canary in the rendered kind overlay: one split everywhere, the router wired to the
predictors it splits between, and no other way for clients to reach the challenger or the shadow."""

from __future__ import annotations

import json

from reference_app.config import Settings
from reference_app.serving.router import parse_split
from reference_app.serving.split import CHALLENGER, CHAMPION

from .k8s import pod_templates, selects

SDEP, ROUTER, SPLIT_CONFIGMAP = "fraud-detector-canary", "traffic-router", "traffic-split"
ALIASES = {CHAMPION: "champion", CHALLENGER: "challenger", "shadow": "challenger"}


def one(objects: list[dict], kind: str, name: str) -> dict:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_one_split_in_settings_configmap_and_seldondeployment(kind_objects):
    share = Settings().canary_traffic
    expected = {CHAMPION: 100 - share, CHALLENGER: share}
    configmap = one(kind_objects, "ConfigMap", SPLIT_CONFIGMAP)
    assert parse_split(configmap["data"]["split.json"]) == expected
    predictors = {
        p["name"]: p for p in one(kind_objects, "SeldonDeployment", SDEP)["spec"]["predictors"]
    }
    assert {n: predictors[n].get("traffic") for n in (CHAMPION, CHALLENGER)} == expected
    assert predictors["shadow"].get("shadow") is True and not predictors["shadow"].get("traffic")


def test_each_predictor_serves_its_alias_and_is_labelled_for_its_service(kind_objects):
    sdep = one(kind_objects, "SeldonDeployment", SDEP)
    for predictor in sdep["spec"]["predictors"]:
        name = predictor["name"]
        (component,) = predictor["componentSpecs"]
        labels = component["metadata"]["labels"]
        (container,) = component["spec"]["containers"]
        assert env(container)["FRAUD_MODEL_URI"] == f"models:/fraud-detector@{ALIASES[name]}"
        assert container["args"] == ["serve"]
        service = one(kind_objects, "Service", f"canary-{name}")
        assert selects(service["spec"]["selector"], labels)
        others = [p for p in sdep["spec"]["predictors"] if p["name"] != name]
        assert not any(
            selects(service["spec"]["selector"], p["componentSpecs"][0]["metadata"]["labels"])
            for p in others
        ), f"Service canary-{name} selects another predictor's pods"
        assert [p["port"] for p in service["spec"]["ports"]] == [9000]


def test_the_router_points_at_the_canary_services_and_reads_the_split_volume(kind_objects):
    router = one(kind_objects, "Deployment", ROUTER)
    ((_, _, pod),) = list(pod_templates(router))
    (container,) = pod["containers"]
    values = env(container)
    for variant in (CHAMPION, CHALLENGER, "shadow"):
        assert values[f"FRAUD_ROUTER_{variant.upper()}_URL"] == f"http://canary-{variant}:9000"
    split_file = values["FRAUD_ROUTER_SPLIT_FILE"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [
        m
        for m in container["volumeMounts"]
        if volumes[m["name"]].get("configMap", {}).get("name") == SPLIT_CONFIGMAP
    ]
    assert len(mounts) == 1 and not mounts[0].get("subPath"), "a subPath mount never updates"
    assert split_file == f"{mounts[0]['mountPath']}/split.json"
    assert values["FRAUD_ROUTER_PORT"] == str(Settings().router_port)
    service = one(kind_objects, "Service", ROUTER)
    assert selects(service["spec"]["selector"], router["spec"]["template"]["metadata"]["labels"])
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"


def test_no_nodeport_reaches_the_challenger_or_the_shadow(kind_objects):
    canary_pods = [
        p["componentSpecs"][0]["metadata"]["labels"]
        for p in one(kind_objects, "SeldonDeployment", SDEP)["spec"]["predictors"]
    ]
    for service in (o for o in kind_objects if o["kind"] == "Service"):
        if service["spec"].get("type") == "NodePort":
            assert not any(
                selects(service["spec"]["selector"], labels) for labels in canary_pods
            ), service["metadata"]["name"]


def test_the_split_file_format_is_what_the_router_reads(kind_objects):
    data = json.loads(one(kind_objects, "ConfigMap", SPLIT_CONFIGMAP)["data"]["split.json"])
    assert set(data) == {CHAMPION, CHALLENGER}
