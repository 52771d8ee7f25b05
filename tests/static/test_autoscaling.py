"""Lab 16's autoscaler in the manifests: manifests/overlays/kind-autoscaling renders, its
SeldonDeployment validates against Seldon's CRD schema and Pod Security restricted, differs from
make deploy's only by the kedaSpec, and carries the numbers of reference_app/scaling/autoscaling.py
(the one source); KEDA is pinned and installed before the Seldon operator, which has keda.enabled;
the lab's default load test is big enough to scale the model up."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import yaml

from reference_app.config import Settings
from reference_app.scaling import autoscaling

from .k8s import crd_schema, pod_security_problems, prepare_manifests, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def overlays(tmp_path_factory) -> dict[str, list[dict]]:
    root = tmp_path_factory.mktemp("autoscaling")
    prepare_manifests(root)
    return {name: render(name, root / "manifests") for name in ("kind", "kind-autoscaling")}


def model(objects: list[dict]) -> dict:
    (found,) = [
        o for o in objects
        if o["kind"] == "SeldonDeployment" and o["metadata"]["name"] == "fraud-detector"
    ]  # fmt: skip
    return found


def test_the_autoscaled_model_validates_and_is_restricted(overlays):
    import jsonschema

    sdep = model(overlays["kind-autoscaling"])
    errors = [e.message for e in jsonschema.Draft7Validator(crd_schema(sdep)).iter_errors(sdep)]
    assert errors == []
    assert pod_security_problems([sdep]) == []


def test_only_the_kedaspec_differs_from_make_deploys_model(overlays):
    autoscaled, fixed = copy.deepcopy(model(overlays["kind-autoscaling"])), model(overlays["kind"])
    keda = autoscaled["spec"]["predictors"][0]["componentSpecs"][0].pop("kedaSpec")
    assert keda and autoscaled == fixed
    others = [o for o in overlays["kind-autoscaling"] if o["kind"] != "SeldonDeployment"]
    assert others == [o for o in overlays["kind"] if o["kind"] != "SeldonDeployment"]


def test_the_kedaspec_has_the_apps_numbers(overlays):
    keda = model(overlays["kind-autoscaling"])["spec"]["predictors"][0]["componentSpecs"][0][
        "kedaSpec"
    ]
    assert (keda["minReplicaCount"], keda["maxReplicaCount"]) == (
        autoscaling.MIN_REPLICAS,
        autoscaling.MAX_REPLICAS,
    )
    (trigger,) = keda["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"] == {
        "serverAddress": autoscaling.PROMETHEUS_URL,
        "query": autoscaling.REQUEST_RATE_QUERY,
        "threshold": str(autoscaling.TARGET_RPS_PER_REPLICA),
    }
    down = keda["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == autoscaling.SCALE_DOWN_WINDOW_S
    # The disruption budget keeps one of the minimum replicas through a drain.
    (pdb,) = [
        o
        for o in overlays["kind-autoscaling"]
        if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == "fraud-detector"
    ]
    assert 1 <= pdb["spec"]["minAvailable"] < autoscaling.MIN_REPLICAS


def test_the_labs_load_test_scales_the_model_up_within_its_maximum():
    s = Settings(_env_file=None)
    wanted = math.ceil(s.load_users * s.load_user_rps / autoscaling.TARGET_RPS_PER_REPLICA)
    assert autoscaling.MIN_REPLICAS < wanted <= autoscaling.MAX_REPLICAS


def test_keda_is_pinned_and_installed_before_the_seldon_operator():
    versions = (ROOT / "scripts" / "versions.sh").read_text()
    assert re.search(r'^KEDA_CHART_VERSION="\d+\.\d+\.\d+"$', versions, flags=re.M)
    deploy = (ROOT / "scripts" / "deploy.sh").read_text()
    assert re.search(r"helm-releases\.sh\" keda seldon-core ", deploy)
    assert "    keda)\n" in (ROOT / "scripts" / "helm-releases.sh").read_text()
    values = yaml.safe_load(
        (ROOT / "manifests" / "helm" / "seldon-core-operator.values.yaml").read_text()
    )
    assert values["keda"] == {"enabled": True}
    assert (ROOT / "manifests" / "helm" / "keda.values.yaml").is_file()


def test_rightsize_reads_the_pods_of_the_deployment_seldon_makes():
    from reference_app.scaling.rightsize import WORKLOADS

    assert (
        WORKLOADS[0].pods == autoscaling.SCALED_OBJECT
    )  # not the canary's fraud-detector-canary-…
