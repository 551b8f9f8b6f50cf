#!/usr/bin/env python3
"""The Pod sandbox ("pause") image of the test node, as an archive `ctr images import` reads.

hack/node.sh builds it at every node start from the pause binary hack/k8s-bins.sh --node compiles from the
kubernetes module's build/pause/linux/pause.c, with the layer and archive writer of hack/image.py (the
operator's image), so both images go through the same code. One layer: /pause, the entrypoint, as in the
upstream image; user 65535 as upstream runs it.
"""

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image  # noqa: E402  (hack/image.py, found through the path above)


def build(binary: Path, name: str) -> bytes:
    arch, interp = image.elf_facts(binary)
    if interp:
        sys.exit(f"{binary}: the pause binary must be static (it is the whole image)")
    layer = image.Layer(0)
    layer.file("pause", binary.read_bytes(), 0o755)
    raw = layer.tar()
    packed = gzip.compress(raw, compresslevel=6, mtime=0)
    blobs: dict[str, bytes] = {}
    layer_digest = image.blob(blobs, packed)
    config = image.canonical({
        "architecture": arch,
        "os": "linux",
        "config": {"User": "65535:65535", "Entrypoint": ["/pause"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
    })
    config_digest = image.blob(blobs, config)
    manifest = image.canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                    "size": len(packed)}],
    })
    manifest_digest = image.blob(blobs, manifest)
    full_name = image.normalized_name(name)
    index = image.canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
            "size": len(manifest), "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"io.containerd.image.name": full_name, "org.opencontainers.image.ref.name": full_name},
        }],
    })
    archive = image.Layer(0)
    archive.file("oci-layout", image.canonical({"imageLayoutVersion": "1.0.0"}))
    archive.file("index.json", index)
    for digest, data in blobs.items():
        archive.file("blobs/sha256/" + digest.removeprefix("sha256:"), data)
    return archive.tar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    args.output.write_bytes(build(args.binary, args.name))


if __name__ == "__main__":
    main()
