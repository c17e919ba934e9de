#!/usr/bin/env python3
"""Write kubeconform JSON schemas from Kubernetes OpenAPI v3 documents and CRDs.

kubeconform's default schemas are downloaded from the internet, which this
project's machines cannot reach, so testbed/tools.sh generates them locally:
every built-in kind from the OpenAPI v3 spec that ships with the pinned
k8s.io/kubernetes release, plus every kind of the CRD files named on the
command line (the prometheus-operator CRDs, and later our own). The layout
matches this kubeconform flag:

    -schema-location '<out>/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}{{.StrictSuffix}}.json'

Each schema is standalone (its references inlined as draft-07 definitions).
The `-strict` variant forbids fields the API does not define, as the API server
does when it rejects unknown fields.

Needs only the standard library and PyYAML (Debian's python3-yaml).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REF_PREFIX = "#/components/schemas/"
DRAFT = "http://json-schema.org/draft-07/schema#"
# OpenAPI extensions and documentation that a validator does not need.
DROP_KEYS = {"description", "example", "externalDocs"}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads a bare `=` as the string it is (YAML 1.1 calls it the `value` tag;
    the AlertmanagerConfig CRD's matchType enum has one)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def _clean(node: Any, strict: bool) -> Any:
    """Turn an OpenAPI v3 schema fragment into JSON Schema draft-07."""
    if isinstance(node, list):
        return [_clean(item, strict) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROP_KEYS:
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
            out[key] = "#/definitions/" + value[len(REF_PREFIX) :]
        elif key in ("properties", "definitions", "patternProperties"):
            out[key] = {name: _clean(sub, strict) for name, sub in value.items()}
        else:
            out[key] = _clean(value, strict)
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.pop("format", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = out.get("x-kubernetes-preserve-unknown-fields")
    if strict and "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX) :])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)


def _closure(name: str, components: dict[str, Any]) -> list[str]:
    """Names of every component `name` depends on, itself included."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in components:
            continue
        seen.add(current)
        found: set[str] = set()
        _refs(components[current], found)
        todo.extend(found - seen)
    return sorted(seen)


def _write(out_dir: Path, group: str, kind: str, version: str, schema: dict[str, Any]) -> None:
    path = out_dir / group / f"{kind.lower()}_{version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True))


def from_openapi(spec_dir: Path, out_dir: Path) -> int:
    """Schemas for every kind in the `*_openapi.json` documents of spec_dir."""
    written = 0
    for spec_file in sorted(spec_dir.glob("*_openapi.json")):
        components = json.loads(spec_file.read_text()).get("components", {}).get("schemas", {})
        for name, component in components.items():
            for gvk in component.get("x-kubernetes-group-version-kind", []):
                # kubeconform's {{.Group}} is "v1" for the core group.
                group = gvk["group"] or gvk["version"]
                if name.endswith("List") or gvk["kind"] in ("WatchEvent", "DeleteOptions", "Status"):
                    continue
                deps = [dep for dep in _closure(name, components) if dep != name]
                for strict in (False, True):
                    schema = _clean(component, strict)
                    schema["$schema"] = DRAFT
                    schema["definitions"] = {dep: _clean(components[dep], strict) for dep in deps}
                    suffix = "-strict" if strict else ""
                    _write(out_dir, group, gvk["kind"], gvk["version"] + suffix, schema)
                written += 1
    return written


def from_crds(crd_files: list[Path], out_dir: Path) -> int:
    """Schemas for every served version of every CustomResourceDefinition given."""
    written = 0
    for crd_file in crd_files:
        for doc in yaml.load_all(crd_file.read_text(), Loader=_Loader):  # noqa: S506 (a SafeLoader)
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                base = version.get("schema", {}).get("openAPIV3Schema")
                if not base:
                    continue
                for strict in (False, True):
                    schema = _clean(copy.deepcopy(base), strict)
                    schema["$schema"] = DRAFT
                    suffix = "-strict" if strict else ""
                    _write(out_dir, spec["group"], spec["names"]["kind"], version["name"] + suffix, schema)
                written += 1
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="schema directory to (re)write")
    parser.add_argument("--openapi-dir", type=Path, help="directory of Kubernetes OpenAPI v3 *_openapi.json")
    parser.add_argument("crds", nargs="*", type=Path, help="CustomResourceDefinition YAML files")
    args = parser.parse_args(argv)
    count = 0
    if args.openapi_dir:
        count += from_openapi(args.openapi_dir, args.out)
    count += from_crds(args.crds, args.out)
    if count == 0:
        parser.error("no kinds found in the given inputs")
    sys.stderr.write(f"wrote schemas for {count} kinds to {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
