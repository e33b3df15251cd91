//! The name-resolution files a container gets: /etc/hosts and /etc/resolv.conf.

use crate::NetworkMode;
use std::path::Path;

/// /etc/hosts for a container named `hostname`.
pub fn hosts_file(hostname: &str, mode: NetworkMode) -> String {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
    if mode == NetworkMode::Host {
        hosts.push_str("127.0.0.1\thost.containers.internal\n");
    }
    hosts
}

/// /etc/resolv.conf: the host's resolvers, except a local stub resolver
/// (systemd-resolved's 127.0.0.53), which a container outside the host's
/// network namespace cannot reach; then the upstream list resolved keeps.
pub fn resolv_conf(mode: NetworkMode) -> String {
    let host = read("/etc/resolv.conf");
    if mode == NetworkMode::Host || !uses_local_stub(&host) {
        return host;
    }
    let upstream = read("/run/systemd/resolve/resolv.conf");
    if upstream.is_empty() {
        host
    } else {
        upstream
    }
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn uses_local_stub(resolv: &str) -> bool {
    resolv.lines().any(|l| {
        let mut words = l.split_whitespace();
        words.next() == Some("nameserver") && words.next().is_some_and(|a| a.starts_with("127."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_container_and_localhost() {
        let h = hosts_file("box1", NetworkMode::None);
        assert!(h.contains("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("127.0.1.1\tbox1\n"));
        assert!(!h.contains("host.containers.internal"));
        assert!(hosts_file("b", NetworkMode::Host).contains("host.containers.internal"));
    }

    #[test]
    fn detects_stub_resolver() {
        assert!(uses_local_stub("# x\nnameserver 127.0.0.53\noptions edns0\n"));
        assert!(!uses_local_stub("nameserver 192.0.2.1\n"));
    }
}
