"""RBAC as the API server decides it, on rendered manifests: may ServiceAccount X do verb V on
resource R? The same answer `kubectl auth can-i --as=system:serviceaccount:NS:X V R` gets from
a cluster holding these objects (Kubernetes docs, "Using RBAC Authorization": RoleBindings grant
a Role's rules, or a ClusterRole's, within their namespace; ClusterRoleBindings everywhere; a
rule matches when its apiGroups, resources and verbs list the request's or `*`, and its
resourceNames, when set, list the object's name — requests without a name, such as create or
a list without a metadata.name field selector, never match a rule with resourceNames). A ServiceAccount is also in the groups
system:serviceaccounts, system:serviceaccounts:NS and system:authenticated.

Lab 15's checks ask a real API server (SubjectAccessReview); tests/labs answers them with this.

    python -m tests.static.rbac     # the matrix of the kind overlay, as chapter 15 shows it
"""

from __future__ import annotations

NAMESPACE = "fraud-lab"


def _subject_matches(subject: dict, account: str, namespace: str, binding_ns: str | None) -> bool:
    if subject.get("kind") == "ServiceAccount":
        return (
            subject.get("name") == account and (subject.get("namespace") or binding_ns) == namespace
        )
    if subject.get("kind") == "Group":
        return subject.get("name") in {
            "system:serviceaccounts",
            f"system:serviceaccounts:{namespace}",
            "system:authenticated",
        }
    return False


def _rule_matches(rule: dict, verb: str, resource: str, group: str, name: str | None) -> bool:
    def has(field: str, value: str) -> bool:
        values = rule.get(field) or []
        return "*" in values or value in values

    if not (has("verbs", verb) and has("apiGroups", group) and has("resources", resource)):
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


def allowed(
    objects: list[dict],
    account: str,
    verb: str,
    resource: str,
    group: str = "",
    name: str | None = None,
    namespace: str = NAMESPACE,
) -> bool:
    """Whether ServiceAccount `namespace/account` may `verb` the `resource` (of API group
    `group`, "" for the core group; `name` for one object) in `namespace`, by the Roles,
    ClusterRoles and bindings among `objects`."""
    roles = {
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
        for o in objects
        if o.get("kind") in ("Role", "ClusterRole")
    }
    for b in objects:
        kind = b.get("kind")
        if kind not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        binding_ns = b["metadata"].get("namespace")
        if kind == "RoleBinding" and binding_ns != namespace:
            continue
        if not any(
            _subject_matches(s, account, namespace, binding_ns) for s in b.get("subjects") or []
        ):
            continue
        ref = b["roleRef"]
        role = roles.get((ref["kind"], binding_ns if ref["kind"] == "Role" else None, ref["name"]))
        if role and any(
            _rule_matches(r, verb, resource, group, name) for r in role.get("rules") or []
        ):
            return True
    return False


def service_accounts(objects: list[dict], namespace: str = NAMESPACE) -> list[str]:
    """The ServiceAccounts the objects define in `namespace`, sorted."""
    return sorted(
        o["metadata"]["name"]
        for o in objects
        if o.get("kind") == "ServiceAccount" and o["metadata"].get("namespace") == namespace
    )


def main() -> None:
    """Print the lab 15 permission matrix (its test_lab.py table) for the kind overlay."""
    import sys
    import tempfile
    from pathlib import Path

    from .k8s import ROOT, prepare_manifests, render

    sys.path.insert(0, str(ROOT / "labs"))
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "lab15", ROOT / "labs" / "15-security-and-compliance" / "test_lab.py"
    )
    lab15 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lab15)
    with tempfile.TemporaryDirectory() as tmp:
        objects = render("kind", prepare_manifests(Path(tmp)))
    for account, verb, resource, name, expected in lab15.PERMISSIONS:
        group, _, plural = resource.rpartition("/")
        answer = allowed(objects, account, verb, plural, group, name)
        target = plural + (f".{group}" if group else "") + (f"/{name}" if name else "")
        mark = "" if answer == expected else f"   <- expected {'yes' if expected else 'no'}"
        print(f"{account:16} {verb:7} {target:64} {'yes' if answer else 'no'}{mark}")
    accounts = service_accounts(objects)
    granted = [
        f"{a} {v} {r}"
        for a in accounts
        for v, r in lab15.FORBIDDEN_TO_ALL
        if allowed(objects, a, v, r.rpartition("/")[2], r.rpartition("/")[0])
    ]
    forbidden = ", ".join(f"{v} {r.rpartition('/')[2]}" for v, r in lab15.FORBIDDEN_TO_ALL)
    print(f"{len(accounts)} ServiceAccounts; may {forbidden}: {', '.join(granted) or 'none'}")


if __name__ == "__main__":
    main()
