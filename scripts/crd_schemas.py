#!/usr/bin/env python3
"""Build the folder of strict JSON schemas that tests/static validates custom resources against,
from the pinned upstream CustomResourceDefinitions (tests/static reads the folder named by
FRAUD_CRD_SCHEMAS, else a `crd-schemas` folder beside the checkout):

    python3 scripts/crd_schemas.py build DIR        # download the pinned CRDs, write DIR
    python3 scripts/crd_schemas.py convert CRD.yaml DIR   # one local CRD file (offline)
    FRAUD_CRD_SCHEMAS=DIR make test

One file per kind and version, `<group>/<kind lowercase>_<version>.json` (kubeconform's naming):
the version's `openAPIV3Schema`, made strict as the API server's strict field validation is (what
`kubectl apply` uses): an object with `properties` gets `additionalProperties: false` unless it
says `x-kubernetes-preserve-unknown-fields`; `x-kubernetes-int-or-string` becomes "integer or
string" (oneOf); `apiVersion` and `kind` are fixed by enum. Converting Argo Workflows v4.1.2's
WorkflowTemplate CRD this way gives, field for field, the schema the tests were written against. Standard library only (YAML is read with
PyYAML when present, else JSON-only CRD files).
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

# The CRDs of the operators the course installs, at the versions scripts/versions.sh pins.
PINNED_CRDS = [
    # Argo Workflows v4.1 (the chart installs minimal CRDs; these are the full ones, same fields).
    *(f"https://raw.githubusercontent.com/argoproj/argo-workflows/v4.1.2/manifests/base/crds/full/argoproj.io_{plural}.yaml"
      for plural in ("workflows", "workflowtemplates", "cronworkflows")),
    # Seldon Core v1.19 (operator/config/crd_v1).
    "https://raw.githubusercontent.com/SeldonIO/seldon-core/v1.19.0-rc.1/operator/config/crd_v1/bases/machinelearning.seldon.io_seldondeployments.yaml",
    # prometheus-operator, as kube-prometheus-stack 91.5.0 ships them.
    *(f"https://raw.githubusercontent.com/prometheus-community/helm-charts/kube-prometheus-stack-91.5.0/charts/kube-prometheus-stack/charts/crds/crds/crd-{name}.yaml"
      for name in ("podmonitors", "servicemonitors", "prometheusrules", "alertmanagerconfigs")),
    # KubeRay v1.7.0 (the chart kuberay-operator 1.7.0 ships the same files in crds/).
    "https://raw.githubusercontent.com/ray-project/kuberay/v1.7.0/ray-operator/config/crd/bases/ray.io_rayjobs.yaml",
]  # fmt: skip


def strict(schema: dict) -> dict:
    """A copy of an OpenAPI v3 (structural) schema as strict JSON Schema draft 7."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: strict(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties", "not"} and isinstance(value, dict):
            out[key] = strict(value)
        elif key in {"allOf", "anyOf", "oneOf"}:
            out[key] = [strict(v) for v in value]
        elif key == "nullable":
            continue
        else:  # x-kubernetes-* annotations and `format` stay: validators ignore them
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["oneOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [*([out["type"]] if isinstance(out["type"], str) else out["type"]), "null"]
    if (
        "properties" in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in schema
    ):
        out["additionalProperties"] = False
    return out


def convert(crd: dict) -> dict[str, dict]:
    """`{relative path: schema}` for every served version of one CRD."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    out = {}
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema.setdefault("properties", {})
        schema["properties"]["apiVersion"] = {
            "type": "string",
            "enum": [f"{group}/{version['name']}"],
        }
        schema["properties"]["kind"] = {"type": "string", "enum": [kind]}
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        out[f"{group}/{kind.lower()}_{version['name']}.json"] = schema
    return out


def load_documents(text: str) -> list[dict]:
    try:
        import yaml
    except ImportError:  # a JSON CRD file
        return [json.loads(text)]
    return [
        d
        for d in yaml.safe_load_all(text)
        if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
    ]


def write(schemas: dict[str, dict], folder: Path) -> None:
    for relative, schema in schemas.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path}")


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "build":
        folder = Path(argv[1])
        for url in PINNED_CRDS:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - pinned https URLs
                for crd in load_documents(response.read().decode()):
                    write(convert(crd), folder)
        return 0
    if len(argv) == 3 and argv[0] == "convert":
        for crd in load_documents(Path(argv[1]).read_text()):
            write(convert(crd), Path(argv[2]))
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
