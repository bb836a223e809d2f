"""Helpers for kube-checks.sh: apply golden patches, validate manifests.

Commands:
  patches FIXTURES OUT     apply each golden patch to its review's pod and
                           write the injected pods to OUT
  validate PATH VERSION... validate every object in PATH (a file or a
                           directory) with kubernetes-validate --strict, and
                           check the pod rules that the schemas cannot express
  extract-sidecar FILE     print the sidecar template from a rendered chart
"""

import json
import pathlib
import sys

import jsonpatch
import kubernetes_validate
import yaml

# Kinds whose schemas kubernetes-validate does not bundle (CRDs).
SKIPPED_GROUPS = ("cert-manager.io/",)


def apply_patches(fixtures: pathlib.Path, out: pathlib.Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for expected_path in sorted(fixtures.glob("*.expected.json")):
        expected = json.loads(expected_path.read_text())
        patch = expected["review"]["response"].get("patch")
        if patch is None:
            continue
        review = json.loads((fixtures / expected["request"]).read_text())
        pod = jsonpatch.apply_patch(review["request"]["object"], patch)
        case = expected_path.name.removesuffix(".expected.json")
        check_injected(case, pod)
        (out / f"{case}.json").write_text(json.dumps(pod, indent=2))
        count += 1
    if count == 0:
        sys.exit(f"no golden patches found in {fixtures}")
    print(f"    applied {count} patches")


def check_injected(case: str, pod: dict) -> None:
    """Checks what injection must have added, beyond schema validity."""
    spec = pod["spec"]
    sidecars = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == "triage"]
    expect(len(sidecars) == 1, case, "expected exactly one triage container")
    expect(pod["metadata"]["annotations"].get("triage.dev/status") == "injected", case, "status annotation missing")
    for container in spec["containers"]:
        if container["name"] == "triage":
            continue
        mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
        expect("/var/run/triage" in mounts, case, f"container {container['name']} lacks the socket mount")
        names = [e["name"] for e in container.get("env", [])]
        expect("TRIAGE_GRPC_SOCKET" in names, case, f"container {container['name']} lacks TRIAGE_GRPC_SOCKET")


def expect(condition: bool, where: str, message: str) -> None:
    if not condition:
        sys.exit(f"{where}: {message}")


def load_objects(path: pathlib.Path):
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    for file in files:
        for doc in yaml.safe_load_all(file.read_text()):
            if not doc:
                continue
            if doc.get("kind", "").endswith("List") and "items" in doc:
                for item in doc["items"]:
                    yield file, item
            else:
                yield file, doc


def validate(path: pathlib.Path, versions: list[str]) -> None:
    checked = 0
    for file, obj in load_objects(path):
        name = f"{file.name}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
        if obj.get("apiVersion", "").startswith(SKIPPED_GROUPS):
            print(f"    skipped {name} (no bundled schema for {obj['apiVersion']})")
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as err:
                location = "/".join(str(p) for p in err.path)
                sys.exit(f"{name}: invalid for Kubernetes {version} at {location}: {err.message}")
        pod_spec = find_pod_spec(obj)
        if pod_spec is not None:
            check_pod_spec(name, pod_spec)
        checked += 1
    print(f"    {checked} objects valid for Kubernetes {', '.join(versions)}")


def find_pod_spec(obj: dict):
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if "template" in spec:
        return spec["template"].get("spec")
    return None


def check_pod_spec(name: str, spec: dict) -> None:
    """Checks rules the API server enforces that JSON schemas cannot."""
    init = spec.get("initContainers") or []
    containers = spec.get("containers") or []
    names = [c["name"] for c in init + containers]
    expect(len(names) == len(set(names)), name, f"duplicate container names {names}")

    volumes = [v["name"] for v in spec.get("volumes") or []]
    expect(len(volumes) == len(set(volumes)), name, f"duplicate volume names {volumes}")

    for container in init + containers:
        where = f"{name}: container {container['name']}"
        mounts = container.get("volumeMounts") or []
        for mount in mounts:
            expect(mount["name"] in volumes, where, f"mounts unknown volume {mount['name']}")
        paths = [m["mountPath"] for m in mounts]
        expect(len(paths) == len(set(paths)), where, f"duplicate mount paths {paths}")
        env = [e["name"] for e in container.get("env") or []]
        expect(len(env) == len(set(env)), where, f"duplicate env names {env}")

    for container in containers:
        expect("restartPolicy" not in container, name, f"regular container {container['name']} sets restartPolicy")
    for container in init:
        if container.get("restartPolicy") == "Always":
            continue
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            expect(probe not in container, name, f"init container {container['name']} has a {probe}")


def extract_sidecar(path: pathlib.Path) -> None:
    for _, obj in load_objects(path):
        if obj.get("kind") == "ConfigMap" and obj["metadata"]["name"].endswith("-sidecar"):
            sys.stdout.write(obj["data"]["sidecar.yaml"])
            return
    sys.exit(f"{path}: no sidecar ConfigMap found")


def extract_policies(path: pathlib.Path, out: pathlib.Path) -> None:
    """Writes the policy.yaml of every ConfigMap in a rendered file to OUT."""
    count = 0
    for _, obj in load_objects(path):
        if obj.get("kind") == "ConfigMap" and "policy.yaml" in obj.get("data", {}):
            count += 1
            target = out / f"policy-{count}.yaml"
            target.write_text(obj["data"]["policy.yaml"])
    if count == 0:
        sys.exit(f"{path}: no policy ConfigMap found")


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[0] == "patches":
        apply_patches(pathlib.Path(argv[1]), pathlib.Path(argv[2]))
    elif len(argv) >= 3 and argv[0] == "validate":
        validate(pathlib.Path(argv[1]), argv[2:])
    elif len(argv) == 3 and argv[0] == "extract-policies":
        extract_policies(pathlib.Path(argv[1]), pathlib.Path(argv[2]))
    elif len(argv) == 2 and argv[0] == "extract-sidecar":
        extract_sidecar(pathlib.Path(argv[1]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
