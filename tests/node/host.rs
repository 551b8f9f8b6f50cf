//! What a node may change on the host, read from the kernel and the tools that manage it, so a test can
//! compare the host before a node started and after its teardown (and see that a running node did change
//! it, so the comparison can fail).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Sysctls the kubelet, kube-proxy and the bridge plugin are known to set (hack/node.sh restores them).
const SYSCTLS: &[&str] = &[
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv4.conf.all.forwarding",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
];

/// Paths the node's components create wherever they are configured, and the node's own state dir.
const PATHS: &[&str] = &[
    "/var/lib/ivschat-operator-node",
    "/run/containerd",
    "/var/lib/kubelet",
    "/var/log/pods",
    "/var/log/containers",
    "/var/lib/cni",
    "/run/netns",
    "/etc/cni",
    "/opt/cni",
    "/opt/containerd",
    "/var/lib/containerd",
];

/// One reading of the host: a named fact → its value.
pub type Snapshot = BTreeMap<String, String>;

pub fn snapshot() -> Snapshot {
    let mut facts = Snapshot::new();
    for name in SYSCTLS {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        let value = std::fs::read_to_string(&path)
            .map_or_else(|_| "(absent)".into(), |v| v.trim().to_string());
        facts.insert(format!("sysctl {name}"), value);
    }
    for path in PATHS {
        facts.insert(format!("path {path}"), Path::new(path).exists().to_string());
    }
    for tool in [
        "iptables-nft",
        "ip6tables-nft",
        "iptables-legacy",
        "ip6tables-legacy",
    ] {
        facts.insert(format!("{tool} rules"), iptables_rules(tool));
    }
    facts.insert("nft tables".into(), output("nft", &["list", "tables"]));
    facts.insert("links".into(), links());
    facts.insert(
        "addresses on lo".into(),
        output("ip", &["-o", "addr", "show", "dev", "lo"]),
    );
    facts.insert("routes".into(), output("ip", &["route", "show"]));
    facts.insert("mount points".into(), mount_points());
    facts.insert("cgroups".into(), top_level_cgroups());
    facts.insert("netns".into(), netns());
    facts.insert("node processes".into(), node_processes());
    facts
}

/// Asserts that the host reads as it did `before`, now that `what` (a teardown) is over.
pub fn assert_restored(before: &Snapshot, what: &str) {
    let left = differences(before, &snapshot());
    assert!(
        left.is_empty(),
        "the host differs after {what}:\n{}",
        left.join("\n")
    );
}

/// Every difference between two readings, one line each.
pub fn differences(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    before
        .iter()
        .filter(|(fact, value)| after.get(*fact) != Some(*value))
        .map(|(fact, value)| {
            format!(
                "{fact}:\n  before: {value}\n  after:  {}",
                after.get(fact).map_or("(not read)", String::as_str)
            )
        })
        .collect()
}

fn output(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Err(err) => format!("({program} failed: {err})"),
    }
}

/// The rules of every table, without counters and comments. A legacy table that holds nothing but its
/// built-in chains with ACCEPT policies is left out: a kernel without modules cannot drop a legacy table
/// once anything has listed it, and such a table filters nothing, so it counts as absent.
fn iptables_rules(tool: &str) -> String {
    let text = output(&format!("{tool}-save"), &[]);
    let mut kept = Vec::new();
    let mut table: Vec<String> = Vec::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let line = strip_counters(line);
        table.push(line.clone());
        if line == "COMMIT" {
            let inert = table.iter().all(|line| {
                line.starts_with('*')
                    || line == "COMMIT"
                    || (line.starts_with(':') && line.ends_with(" ACCEPT"))
            });
            if !inert {
                kept.append(&mut table);
            }
            table.clear();
        }
    }
    kept.append(&mut table);
    kept.join("\n")
}

fn strip_counters(line: &str) -> String {
    match (line.find(" ["), line.starts_with(':')) {
        (Some(at), true) => line[..at].to_string(),
        _ => line.to_string(),
    }
}

/// Interface names and kinds (not their counters or flags that traffic changes).
fn links() -> String {
    output("ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|line| line.split(':').nth(1).map(|name| name.trim().to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mount_points() -> String {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .collect();
    points.sort_unstable();
    points.join(" ")
}

/// The directories directly under each cgroup hierarchy's root (kubepods, k8s.io, ... would show here).
fn top_level_cgroups() -> String {
    let mut names = Vec::new();
    let roots = std::fs::read_dir("/sys/fs/cgroup")
        .map(|dir| dir.flatten().map(|e| e.path()).collect::<Vec<_>>());
    let mut roots = roots.unwrap_or_default();
    roots.push("/sys/fs/cgroup".into());
    for root in roots {
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() && path.join("cgroup.procs").exists() {
                    names.push(path.display().to_string());
                }
            }
        }
    }
    names.sort();
    names.join(" ")
}

fn netns() -> String {
    let mut names: Vec<String> = ["/run/netns", "/var/run/netns"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|dir| dir.flatten().map(|e| e.path().display().to_string()))
        .collect();
    names.sort();
    names.join(" ")
}

/// Processes whose command line names the node's state dir (its components and containerd's shims).
fn node_processes() -> String {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains("/var/lib/ivschat-operator-node") {
                    found.push(format!("{pid}: {}", cmdline.trim()));
                }
            }
        }
    }
    found.sort();
    found.join("\n")
}
