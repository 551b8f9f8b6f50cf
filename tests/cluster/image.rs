//! The image built without a container engine (`make image`, hack/image.py): it keeps the Dockerfile's
//! contract (user, entrypoint, command, exposed ports, binary path), and its archive is a valid OCI image
//! layout and `docker save` archive at once. Checked here without any container engine: every digest and
//! size recomputed, each layer's diff_id from its uncompressed tar, manifest.json against index.json.
//!
//! The archive is built by the real builder from a small stand-in binary (the host's `true`, dynamically
//! linked like the operator), so the test takes a second; as root it also runs the stand-in inside the
//! unpacked image as the image's user, which proves the loader and libraries the builder copied suffice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ivschat_testsupport::command::repo_path;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The stand-in for the operator binary: small, and linked against glibc as the release build is.
const STAND_IN: &str = "/bin/true";
const NAME: &str = "ivschat-operator:contract-test";

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative)).expect(relative)
}

fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("ivschat-image-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the real builder on the stand-in binary and returns the archive's bytes.
fn build_archive(scratch: &Path, file: &str) -> Vec<u8> {
    let output = scratch.join(file);
    let run = Command::new("python3")
        .arg(repo_path("hack/image.py"))
        .arg("--binary")
        .arg(STAND_IN)
        .arg("--name")
        .arg(NAME)
        .arg("--output")
        .arg(&output)
        .output()
        .expect("python3 hack/image.py");
    assert!(
        run.status.success(),
        "hack/image.py failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(&output).expect("the archive")
}

/// One tar member: its type flag, mode, owner and content.
#[derive(Debug)]
struct Member {
    kind: u8,
    mode: u32,
    uid: u32,
    gid: u32,
    data: Vec<u8>,
}

fn octal(field: &[u8]) -> u64 {
    let text = std::str::from_utf8(field).expect("octal field");
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        0
    } else {
        u64::from_str_radix(digits, 8).expect("octal number")
    }
}

fn field_str(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8(field[..end].to_vec()).expect("UTF-8 name")
}

/// A ustar/pax reader, enough for the archives hack/image.py writes (and tells if it meets anything else).
fn untar(bytes: &[u8]) -> BTreeMap<String, Member> {
    let mut members = BTreeMap::new();
    let mut offset = 0;
    let mut pax_path: Option<String> = None;
    while offset + 512 <= bytes.len() {
        let header = &bytes[offset..offset + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let stored: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    u64::from(b' ')
                } else {
                    u64::from(b)
                }
            })
            .sum();
        assert_eq!(
            stored,
            octal(&header[148..156]),
            "tar header checksum at {offset}"
        );
        let size = usize::try_from(octal(&header[124..136])).expect("size");
        let data = bytes[offset + 512..offset + 512 + size].to_vec();
        offset += 512 + size.div_ceil(512) * 512;
        let kind = header[156];
        if kind == b'x' {
            let records = String::from_utf8(data).expect("pax records");
            pax_path = records
                .lines()
                .filter_map(|line| line.split_once(" path="))
                .map(|(_, path)| path.to_owned())
                .next();
            continue;
        }
        assert!(
            matches!(kind, b'0' | b'5'),
            "unexpected tar member type {}",
            kind as char
        );
        let mut name = field_str(&header[0..100]);
        let prefix = field_str(&header[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        let name = pax_path
            .take()
            .unwrap_or(name)
            .trim_end_matches('/')
            .to_owned();
        let member = Member {
            kind,
            mode: u32::try_from(octal(&header[100..108])).expect("mode"),
            uid: u32::try_from(octal(&header[108..116])).expect("uid"),
            gid: u32::try_from(octal(&header[116..124])).expect("gid"),
            data,
        };
        assert!(
            members.insert(name.clone(), member).is_none(),
            "{name} twice"
        );
    }
    members
}

fn gunzip(scratch: &Path, bytes: &[u8]) -> Vec<u8> {
    let path = scratch.join("layer.tar.gz");
    std::fs::write(&path, bytes).expect("layer");
    let run = Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
        .expect("gzip -dc");
    assert!(
        run.status.success(),
        "gzip -dc: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    run.stdout
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// The final stage of the Dockerfile, instruction by instruction (first word → the rest of the line).
fn dockerfile_final_stage() -> BTreeMap<String, String> {
    let dockerfile = read("Dockerfile");
    let stage = dockerfile.rsplit("\nFROM ").next().expect("a final stage");
    stage
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(' '))
        .map(|(word, rest)| (word.to_owned(), rest.trim().to_owned()))
        .collect()
}

/// A blob of the layout, after checking its name is its digest and the descriptor's size is its length.
fn blob<'a>(archive: &'a BTreeMap<String, Member>, descriptor: &Value) -> &'a [u8] {
    let digest = descriptor["digest"].as_str().expect("digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let member = archive
        .get(&format!("blobs/sha256/{hex}"))
        .unwrap_or_else(|| panic!("no blob for {digest}"));
    assert_eq!(sha256(&member.data), digest, "blob content");
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(member.data.len() as u64),
        "size of {digest}"
    );
    &member.data
}

#[test]
fn the_image_archive_keeps_the_dockerfile_contract_and_is_a_valid_oci_and_docker_archive() {
    let scratch = Scratch::new("archive");
    let bytes = build_archive(&scratch.0, "image.tar");
    let archive = untar(&bytes);

    // The OCI layout: oci-layout, index.json → manifest → config and layers, every digest and size right.
    assert_eq!(
        json(&archive["oci-layout"].data)["imageLayoutVersion"],
        "1.0.0"
    );
    let index = json(&archive["index.json"].data);
    assert_eq!(index["schemaVersion"], 2);
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    let descriptor = &manifests[0];
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let full_name = format!("docker.io/library/{NAME}");
    assert_eq!(
        descriptor["annotations"]["io.containerd.image.name"],
        full_name.as_str()
    );
    // A bare tag here would make podman name the image localhost/<tag>:latest.
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.ref.name"],
        full_name.as_str()
    );
    let manifest = json(blob(&archive, descriptor));
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config = json(blob(&archive, &manifest["config"]));
    assert_eq!(descriptor["platform"]["os"], config["os"]);
    assert_eq!(
        descriptor["platform"]["architecture"],
        config["architecture"]
    );
    assert_eq!(config["os"], "linux");

    let layers = manifest["layers"].as_array().expect("layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(layers.len(), diff_ids.len());
    let mut files = BTreeMap::new();
    let mut layer_tars = Vec::new();
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let tar = gunzip(&scratch.0, blob(&archive, layer));
        assert_eq!(
            diff_id.as_str(),
            Some(sha256(&tar).as_str()),
            "diff_id of {}",
            layer["digest"]
        );
        files.extend(untar(&tar));
        layer_tars.push(tar);
    }
    // Every file of the archive is accounted for: no stray blobs.
    let blobs = archive
        .keys()
        .filter(|name| name.starts_with("blobs/sha256/"))
        .count();
    assert_eq!(blobs, 2 + layers.len(), "{:?}", archive.keys());

    // manifest.json, for docker load: the same config and layers, the name as given.
    let docker = json(&archive["manifest.json"].data);
    let docker = docker.as_array().expect("manifest.json is a list");
    assert_eq!(docker.len(), 1);
    let path_of = |descriptor: &Value| {
        let digest = descriptor["digest"].as_str().expect("digest");
        format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
    };
    assert_eq!(docker[0]["Config"], path_of(&manifest["config"]).as_str());
    let docker_layers: Vec<String> = layers.iter().map(path_of).collect();
    assert_eq!(docker[0]["Layers"], serde_json::json!(docker_layers));
    assert_eq!(docker[0]["RepoTags"], serde_json::json!([NAME]));

    // The Dockerfile's contract, read from its final stage.
    let stage = dockerfile_final_stage();
    let runtime = &config["config"];
    assert_eq!(runtime["User"], stage["USER"].as_str(), "USER");
    let entrypoint: Value =
        serde_json::from_str(&stage["ENTRYPOINT"]).expect("ENTRYPOINT is exec form");
    let cmd: Value = serde_json::from_str(&stage["CMD"]).expect("CMD is exec form");
    assert_eq!(runtime["Entrypoint"], entrypoint, "ENTRYPOINT");
    assert_eq!(runtime["Cmd"], cmd, "CMD");
    let exposed: Vec<String> = stage["EXPOSE"]
        .split_whitespace()
        .map(|port| format!("{port}/tcp"))
        .collect();
    let ports: Vec<&String> = runtime["ExposedPorts"]
        .as_object()
        .expect("ExposedPorts")
        .keys()
        .collect();
    assert_eq!(ports, exposed.iter().collect::<Vec<_>>(), "EXPOSE");
    let copied_to = stage["COPY"]
        .split_whitespace()
        .last()
        .expect("COPY destination");
    assert_eq!(
        entrypoint[0], copied_to,
        "the entrypoint is the binary the Dockerfile copies"
    );
    assert!(
        runtime.get("Volumes").is_none_or(Value::is_null),
        "no volumes: {runtime}"
    );

    // The filesystem: the binary where the entrypoint says, executable; the user known; CA certificates.
    let binary = &files[copied_to.trim_start_matches('/')];
    assert_eq!(
        binary.data,
        std::fs::read(STAND_IN).expect("stand-in"),
        "the binary, unchanged"
    );
    assert_eq!(binary.mode & 0o777, 0o755);
    let user = runtime["User"].as_str().expect("User");
    let (uid, gid) = user.split_once(':').expect("uid:gid");
    let passwd = String::from_utf8(files["etc/passwd"].data.clone()).expect("passwd");
    assert!(
        passwd
            .lines()
            .any(|line| line.starts_with(&format!("nonroot:x:{uid}:{gid}:"))),
        "{passwd}"
    );
    let group = String::from_utf8(files["etc/group"].data.clone()).expect("group");
    assert!(
        group
            .lines()
            .any(|line| line.starts_with(&format!("nonroot:x:{gid}:"))),
        "{group}"
    );
    assert_eq!(
        files["etc/ssl/certs/ca-certificates.crt"].data,
        std::fs::read("/etc/ssl/certs/ca-certificates.crt").expect("the host's CA bundle")
    );
    let ssl_env = "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt";
    assert!(
        runtime["Env"]
            .as_array()
            .expect("Env")
            .iter()
            .any(|env| env == ssl_env),
        "{runtime}"
    );
    // No shell, and nothing the process would need to write: /tmp is an empty directory.
    assert!(
        !files.keys().any(|name| name.ends_with("bin/sh")),
        "{:?}",
        files.keys()
    );
    assert_eq!(files["tmp"].kind, b'5');
    assert!(!files.keys().any(|name| name.starts_with("tmp/")));
    for (name, member) in &files {
        let owned_by_user = name == "home/nonroot";
        assert_eq!(
            (member.uid != 0, member.gid != 0),
            (owned_by_user, owned_by_user),
            "owner of {name}"
        );
    }

    // As root: the stand-in runs inside the unpacked image as the image's user, so the loader and libraries
    // the builder copied from `ldd` are all there.
    if Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
    {
        let root = scratch.0.join("rootfs");
        std::fs::create_dir_all(&root).expect("rootfs");
        for tar in &layer_tars {
            let path = scratch.0.join("layer.tar");
            std::fs::write(&path, tar).expect("layer");
            let run = Command::new("tar")
                .arg("-xf")
                .arg(&path)
                .arg("-C")
                .arg(&root)
                .status()
                .expect("tar");
            assert!(run.success());
        }
        // chroot lives in /usr/sbin, which a test's PATH may lack.
        let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .expect("chroot (coreutils)");
        let run = Command::new(chroot)
            .arg(format!("--userspec={user}"))
            .arg(&root)
            .arg(entrypoint[0].as_str().expect("entrypoint"))
            .env_clear()
            .output()
            .expect("chroot");
        assert!(run.status.success(), "the stand-in in the image: {run:?}");
    } else {
        eprintln!("not root: the stand-in is not run inside the unpacked image");
    }
}

#[test]
fn the_same_binary_gives_the_same_archive() {
    let scratch = Scratch::new("determinism");
    let first = build_archive(&scratch.0, "first.tar");
    let second = build_archive(&scratch.0, "second.tar");
    assert!(first == second, "two builds of the same binary differ");
}

#[test]
fn make_image_runs_the_builder_on_the_release_build_and_the_readme_says_how_to_load_it() {
    let makefile = read("Makefile");
    let recipe = makefile
        .split("\nimage: release\n")
        .nth(1)
        .expect("an image target that depends on release");
    assert!(
        recipe
            .lines()
            .next()
            .is_some_and(|line| line.contains("hack/image.py")),
        "{recipe}"
    );
    assert!(
        makefile.contains("@echo \"make image "),
        "make help lists the image target"
    );
    let builder = read("hack/image.py");
    assert!(
        builder.contains("target/release/ivschat-operator"),
        "the builder packs the release build"
    );
    let readme = read("README.md");
    let section = readme
        .split("Building the image without a container engine")
        .nth(1)
        .and_then(|rest| rest.split("\n**").next())
        .expect("a README section on building the image without a container engine");
    for command in [
        "make image",
        "target/image/",
        "docker load -i",
        "podman load -i",
        "ctr -n k8s.io images import",
    ] {
        assert!(
            section.contains(command),
            "the README's image section mentions {command}"
        );
    }
}
