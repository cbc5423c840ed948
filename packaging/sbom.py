#!/usr/bin/env python3
"""A CycloneDX 1.5 JSON SBOM of one binary package, from `cargo metadata`.

usage: sbom.py PACKAGE TARGET_TRIPLE > sbom.cdx.json

Lists exactly the crates linked into PACKAGE's binary on TARGET_TRIPLE
(normal dependencies resolved by Cargo.lock; no dev, build-only or
proc-macro crates),
with their licences, registry checksums and the dependency graph. Output is
byte-identical for the same lock file and SOURCE_DATE_EPOCH.
"""

import json
import os
import subprocess
import sys
import tomllib
import uuid
from datetime import datetime, timezone


def main() -> None:
    package, triple = sys.argv[1], sys.argv[2]
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1", "--filter-platform", triple],
            check=True,
            capture_output=True,
        ).stdout
    )
    with open(os.path.join(metadata["workspace_root"], "Cargo.lock"), "rb") as f:
        checksums = {
            (p["name"], p["version"]): p["checksum"]
            for p in tomllib.load(f)["package"]
            if "checksum" in p
        }
    packages = {p["id"]: p for p in metadata["packages"]}
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    root = next(p["id"] for p in metadata["packages"] if p["name"] == package and p["source"] is None)

    def proc_macro(pid):
        return any("proc-macro" in t["kind"] for t in packages[pid]["targets"])

    def linked(node):
        # Linked: a normal dependency (kind null) that is not a compiler plugin.
        return [
            d["pkg"]
            for d in node["deps"]
            if any(k["kind"] is None for k in d["dep_kinds"]) and not proc_macro(d["pkg"])
        ]

    seen, queue = {root}, [root]
    while queue:
        for dep in linked(nodes[queue.pop()]):
            if dep not in seen:
                seen.add(dep)
                queue.append(dep)

    def ref(pid):
        p = packages[pid]
        return f"pkg:cargo/{p['name']}@{p['version']}"

    def component(pid, kind):
        p = packages[pid]
        c = {"type": kind, "bom-ref": ref(pid), "name": p["name"], "version": p["version"], "purl": ref(pid)}
        if p.get("license"):
            c["licenses"] = [{"expression": p["license"]}]
        checksum = checksums.get((p["name"], p["version"]))
        if checksum:
            c["hashes"] = [{"alg": "SHA-256", "content": checksum}]
        return c

    ordered = sorted(seen - {root}, key=ref)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    body = {
        "components": [component(pid, "library") for pid in ordered],
        "dependencies": [
            {"ref": ref(pid), "dependsOn": sorted({ref(d) for d in linked(nodes[pid])})}
            for pid in sorted(seen, key=ref)
        ],
    }
    digest = json.dumps(body, sort_keys=True).encode()
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, ref(root) + triple + digest.hex())}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "suanli packaging/sbom.py"}]},
            "component": component(root, "application") | {"properties": [{"name": "target", "value": triple}]},
        },
        **body,
    }
    json.dump(bom, sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
