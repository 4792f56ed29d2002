#!/usr/bin/env python3
"""tune_validate.py -- validate the manifests `llmsim tune` writes.

    tune_validate.py FILE...

Each YAML document is checked against a schema nobody here wrote:

- Kubernetes kinds (HorizontalPodAutoscaler autoscaling/v2, Deployment
  apps/v1): the Kubernetes API's OpenAPI schema as shipped by the pip package
  kubernetes-validate, in strict mode (unknown fields are errors), for
  Kubernetes 1.27.0 and 1.37.0.
- KEDA ScaledObject (keda.sh/v1alpha1): the JSON Schema of the ScaledObject
  model of the pip package cloudcoil-models-keda, which is generated from
  KEDA's CRD (config/crd/bases/keda.sh_scaledobjects.yaml in kedacore/keda);
  validated with jsonschema, with every object closed (additionalProperties
  false) so a misspelt field is an error, as it is for the Kubernetes kinds.

Exit: 0 all valid; 1 something invalid (the message names the file, the kind
and the field); 2 usage; 77 a module is missing (the test-suite's skip).
"""
import sys

try:
    import yaml
    import jsonschema
    import kubernetes_validate
    from cloudcoil.models.keda import v1alpha1 as keda
except ImportError as exc:  # pragma: no cover - depends on the environment
    print(f"tune_validate: {exc} (pip install kubernetes-validate jsonschema cloudcoil-models-keda pyyaml: "
          "tests/requirements.txt)", file=sys.stderr)
    sys.exit(77)

K8S_VERSIONS = ("1.27.0", "1.37.0")


def closed(schema):
    """Make every object of a JSON Schema refuse properties it does not name."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for v in schema.values():
            closed(v)
    elif isinstance(schema, list):
        for v in schema:
            closed(v)
    return schema


def keda_schema():
    schema = keda.ScaledObject.model_json_schema(by_alias=True)
    return closed(schema)


def check(path, doc, scaledobject_schema):
    kind = doc.get("kind")
    if kind == "ScaledObject":
        if doc.get("apiVersion") != "keda.sh/v1alpha1":
            return f"{path}: ScaledObject: apiVersion {doc.get('apiVersion')!r}, expected keda.sh/v1alpha1"
        errors = sorted(jsonschema.Draft202012Validator(scaledobject_schema).iter_errors(doc),
                        key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            return f"{path}: ScaledObject: {'.'.join(str(p) for p in e.path)}: {e.message}"
        return None
    if kind not in ("HorizontalPodAutoscaler", "Deployment"):
        return f"{path}: unexpected kind {kind!r}"
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            return f"{path}: {kind} (Kubernetes {version}): {'.'.join(str(p) for p in e.path)}: {e.message}"
    return None


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    schema = keda_schema()
    bad = 0
    for path in argv[1:]:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            print(f"{path}: no document", file=sys.stderr)
            bad += 1
        for doc in docs:
            msg = check(path, doc, schema)
            if msg:
                print(msg, file=sys.stderr)
                bad += 1
            else:
                print(f"{path}: {doc['kind']} valid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
