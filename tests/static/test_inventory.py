"""Lab 15's model inventory on the SeldonDeployments the overlay renders: one row per served
model URI, with the traffic each predictor gets; the Role of its CronJob lets it read exactly
what it lists (tests/static/rbac.py evaluates the Role as the API server would)."""

from __future__ import annotations

from reference_app.serving.inventory import MODEL_URI, inventory_rows

from .rbac import allowed


def test_inventory_rows_of_the_rendered_seldondeployments(kind_objects):
    deployments = [o for o in kind_objects if o["kind"] == "SeldonDeployment"]
    rows = inventory_rows(deployments, lambda uri: {"version": MODEL_URI.match(uri)["alias"]})
    by = {(r["deployment"], r["predictor"]): r for r in rows}
    assert by[("fraud-detector", "default")]["model_uri"] == "models:/fraud-detector@champion"
    assert by[("fraud-detector", "default")]["traffic"] == 100
    assert by[("fraud-detector", "default")]["version"] == "champion"
    canary = {p: r for (d, p), r in by.items() if d == "fraud-detector-canary"}
    assert sum(r["traffic"] for r in canary.values()) == 100
    assert [r["shadow"] for r in canary.values()].count(True) <= 1


def test_the_inventory_may_list_what_it_reads_and_nothing_more(kind_objects):
    account = "model-inventory"
    assert allowed(kind_objects, account, "list", "seldondeployments", "machinelearning.seldon.io")
    assert allowed(kind_objects, account, "get", "seldondeployments", "machinelearning.seldon.io")
    for verb, resource, group in (
        ("patch", "seldondeployments", "machinelearning.seldon.io"),
        ("get", "secrets", ""),
        ("list", "pods", ""),
        ("create", "workflows", "argoproj.io"),
    ):
        assert not allowed(kind_objects, account, verb, resource, group), (verb, resource)
