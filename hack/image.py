#!/usr/bin/env python3
"""Builds the operator's container image as an archive, with no container engine and no registry.

`make image` runs this on the release build. The output is one tar that is at the same time
- an OCI image layout (oci-layout, index.json, blobs/sha256/...), which `ctr images import`, `podman load`
  and `skopeo copy oci-archive:...` read, and
- a `docker save` archive (manifest.json naming the same blobs), which `docker load` reads.

The image keeps the Dockerfile's contract (tests/cluster/image.rs checks the two agree): the binary at
/usr/local/bin/ivschat-operator as the entrypoint, `run` as the command, user and group 65532 (distroless's
"nonroot"), ports 8080 and 8081. Instead of distroless's cc base it carries only what the binary needs, taken
from this host: the shared libraries `ldd` reports and the dynamic loader the ELF header names (none for a
static binary), the CA bundle of Debian's ca-certificates package, /etc/passwd and /etc/group entries for
nonroot. No shell, nothing written at run time (the root filesystem can be read-only); /tmp is an empty dir.

Why the host's libraries rather than a static build: they are exactly the glibc the binary was just linked
against (no version skew, as a base image could have); a static glibc binary still loads NSS modules of its own
glibc version at run time for getaddrinfo, and a musl build needs a musl target and a musl C toolchain for
aws-lc-rs and ring, which an offline build host does not have.

The output is deterministic: every timestamp is SOURCE_DATE_EPOCH (default 0), owners are numeric, entries
are sorted and gzip carries no name or time, so the same binary on the same host gives the same digests.

Standard library only (Python 3.11+: tomllib).
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

# The contract shared with the Dockerfile.
BINARY_PATH = "/usr/local/bin/ivschat-operator"
ENTRYPOINT = [BINARY_PATH]
CMD = ["run"]
USER = "65532:65532"
EXPOSED_PORTS = [8080, 8081]

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
NONROOT = 65532
# As distroless has them: root, nobody and nonroot, none with a login shell (there is no shell).
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
# glibc's built-in files and dns services (libc.so.6 has carried both since 2.34): the kubelet mounts
# /etc/hosts and /etc/resolv.conf.
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"

ROOT = Path(__file__).resolve().parent.parent
ELF_MACHINES = {62: "amd64", 183: "arm64"}
PT_INTERP = 3


def elf_facts(binary: Path) -> tuple[str, str | None]:
    """The image architecture and the dynamic loader (PT_INTERP) of a 64-bit little-endian ELF executable."""
    data = binary.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"{binary}: not a 64-bit little-endian ELF file")
    (machine,) = struct.unpack_from("<H", data, 0x12)
    if machine not in ELF_MACHINES:
        sys.exit(f"{binary}: unsupported ELF machine {machine}")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    interp = None
    for i in range(phnum):
        p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == PT_INTERP:
            interp = data[p_offset : p_offset + p_filesz].rstrip(b"\0").decode()
    return ELF_MACHINES[machine], interp


def shared_libraries(binary: Path) -> list[str]:
    """The absolute paths `ldd` resolves for the binary's libraries (the vDSO has no file; static: none)."""
    try:
        run = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    except FileNotFoundError:
        sys.exit("ldd is missing (Debian: libc-bin): it lists the libraries the image must carry")
    if run.returncode != 0:
        if "not a dynamic executable" in run.stdout + run.stderr:
            return []
        sys.exit(f"ldd {binary} failed: {run.stderr.strip()}")
    paths = []
    for line in run.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            sys.exit(f"{binary}: a library is missing on this host: {line}")
        m = re.match(r"^(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$", line)
        if m:
            paths.append(m.group(1))
    return paths


def normalized_name(name: str) -> str:
    """The fully qualified reference Docker, containerd's CRI and podman all resolve `name` to."""
    if "@" in name:
        sys.exit(f"{name}: give a tag, not a digest")
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = ("docker.io/library/" if not rest else "docker.io/") + name
    return name


class Layer:
    """A layer tar built in memory: sorted entries, numeric owners, one fixed mtime."""

    def __init__(self, mtime: int):
        self.mtime = mtime
        self.entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}

    def _info(self, path: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, self.mtime
        info.uname = info.gname = ""
        return info

    def _parents(self, path: str) -> None:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            self.entries.setdefault(parent, (self._info(parent, tarfile.DIRTYPE, 0o755), None))

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = (self._info(path, tarfile.DIRTYPE, mode, uid, gid), None)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self._parents(path)
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.entries[path] = (info, data)

    def tar(self) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                info, data = self.entries[path]
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return out.getvalue()


def blob(blobs: dict[str, bytes], data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def build(binary: Path, name: str, version: str, mtime: int) -> tuple[bytes, str, str]:
    """The archive, the image's full name and its manifest digest."""
    arch, interp = elf_facts(binary)
    libraries = shared_libraries(binary) if interp else []
    if interp and interp not in libraries:
        libraries.append(interp)

    base = Layer(mtime)
    base.dir("tmp", 0o1777)
    base.dir("home/nonroot", 0o700, NONROOT, NONROOT)
    base.file("etc/passwd", PASSWD.encode())
    base.file("etc/group", GROUP.encode())
    base.file("etc/nsswitch.conf", NSSWITCH.encode())
    base.file(CA_BUNDLE, Path(CA_BUNDLE).read_bytes())
    # Each library at the path the loader looks for it (the one ldd reports, the loader at PT_INTERP), as a
    # regular file with the content its host path resolves to: no symlinks that depend on the host's layout.
    for lib in sorted(set(libraries)):
        base.file(lib, Path(lib).resolve().read_bytes(), 0o755)

    app = Layer(mtime)
    app.file(BINARY_PATH, binary.read_bytes(), 0o755)

    blobs: dict[str, bytes] = {}
    layers, diff_ids = [], []
    for layer in (base, app):
        raw = layer.tar()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        packed = gzip.compress(raw, compresslevel=6, mtime=0)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": blob(blobs, packed), "size": len(packed)})

    created = f"{datetime.datetime.fromtimestamp(mtime, datetime.UTC):%Y-%m-%dT%H:%M:%SZ}"
    config = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {
            "User": USER,
            "ExposedPorts": {f"{port}/tcp": {} for port in EXPOSED_PORTS},
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", f"SSL_CERT_FILE={CA_BUNDLE}"],
            "Entrypoint": ENTRYPOINT,
            "Cmd": CMD,
            "WorkingDir": "/home/nonroot",
            "Labels": {
                "org.opencontainers.image.title": "ivschat-operator",
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.licenses": "Apache-2.0",
            },
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": created, "created_by": "hack/image.py: passwd, group, CA certificates, shared libraries"},
            {"created": created, "created_by": f"hack/image.py: {BINARY_PATH}"},
        ],
    }
    config_bytes = canonical(config)
    config_digest = blob(blobs, config_bytes)
    manifest_bytes = canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config_bytes)},
        "layers": layers,
    })
    manifest_digest = blob(blobs, manifest_bytes)

    full_name = normalized_name(name)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "platform": {"architecture": arch, "os": "linux"},
            # containerd names the image after the first; podman after the second, normalised, so it gets
            # the full name too (a bare tag there would become localhost/<tag>:latest).
            "annotations": {"io.containerd.image.name": full_name, "org.opencontainers.image.ref.name": full_name},
        }],
    }
    docker_manifest = [{
        "Config": "blobs/sha256/" + config_digest.removeprefix("sha256:"),
        "RepoTags": [name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"],
        "Layers": ["blobs/sha256/" + layer["digest"].removeprefix("sha256:") for layer in layers],
    }]

    archive = Layer(mtime)
    archive.file("oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
    archive.file("index.json", canonical(index))
    archive.file("manifest.json", canonical(docker_manifest))
    for digest, data in blobs.items():
        archive.file("blobs/sha256/" + digest.removeprefix("sha256:"), data)
    return archive.tar(), full_name, manifest_digest


def cargo_version() -> str:
    with open(ROOT / "Cargo.toml", "rb") as f:
        return tomllib.load(f)["package"]["version"]


def main() -> None:
    version = cargo_version()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path, default=ROOT / "target/release/ivschat-operator")
    parser.add_argument("--name", default=os.environ.get("IMAGE") or f"ivschat-operator:{version}",
                        help="image name and tag (default: $IMAGE, else ivschat-operator:<Cargo.toml version>)")
    parser.add_argument("--output", type=Path,
                        help="archive path (default: target/image/<name>-<tag>.oci.tar)")
    args = parser.parse_args()

    output = args.output
    if output is None:
        base = args.name.rsplit("/", 1)[-1].replace(":", "-")
        output = ROOT / "target/image" / f"{base}.oci.tar"
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    archive, full_name, manifest_digest = build(args.binary, args.name, version, mtime)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(archive)
    tmp.replace(output)
    print(f"{full_name} {manifest_digest}", file=sys.stderr, flush=True)
    print(output)


if __name__ == "__main__":
    main()
