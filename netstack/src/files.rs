//! The name-resolution files a container gets: /etc/hosts and /etc/resolv.conf.

use crate::helper::{PASTA_DNS_IP, SLIRP_DNS_IP, SLIRP_HOST_IP};
use crate::NetworkMode;
use std::path::Path;

/// /etc/hosts for a container named `hostname`. `host.containers.internal`
/// names the host where the mode has an address that reaches it: its
/// loopback for `host`, slirp4netns's gateway when host loopback is
/// allowed. (pasta 2023-03, Debian 12's, has no such address: it sends
/// connections to its gateway out to the network; `-T PORT` forwards a
/// port of the container's loopback to the host's instead.)
pub fn hosts_file(hostname: &str, mode: &NetworkMode) -> String {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
    match mode {
        NetworkMode::Host => hosts.push_str("127.0.0.1\thost.containers.internal\n"),
        NetworkMode::Slirp4netns(o) if o.allow_host_loopback => {
            hosts.push_str(&format!("{SLIRP_HOST_IP}\thost.containers.internal\n"))
        }
        _ => {}
    }
    hosts
}

/// /etc/resolv.conf. Helpers answer DNS themselves (forwarding to the
/// host's resolvers): the container is pointed at them, keeping the host's
/// search domains and options. Otherwise the host's resolvers, except a
/// local stub resolver (systemd-resolved's 127.0.0.53), which a container
/// outside the host's network namespace cannot reach: then the upstream
/// list resolved keeps.
pub fn resolv_conf(mode: &NetworkMode) -> String {
    let host = read("/etc/resolv.conf");
    let helper_dns = match mode {
        NetworkMode::Slirp4netns(_) => Some(SLIRP_DNS_IP),
        NetworkMode::Pasta(_) => Some(PASTA_DNS_IP),
        _ => None,
    };
    if let Some(ip) = helper_dns {
        let kept = host.lines().filter(|l| l.starts_with("search ") || l.starts_with("options "));
        return std::iter::once(format!("nameserver {ip}"))
            .chain(kept.map(str::to_string))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
    }
    if *mode == NetworkMode::Host || !uses_local_stub(&host) {
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
        let h = hosts_file("box1", &NetworkMode::None);
        assert!(h.contains("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("127.0.1.1\tbox1\n"));
        assert!(!h.contains("host.containers.internal"));
        assert!(hosts_file("b", &NetworkMode::Host).contains("127.0.0.1\thost.containers.internal"));
        let slirp = "slirp4netns:allow_host_loopback=true".parse().unwrap();
        assert!(hosts_file("b", &slirp).contains("10.0.2.2\thost.containers.internal"));
        assert!(resolv_conf(&slirp).starts_with("nameserver 10.0.2.3\n"));
    }

    #[test]
    fn detects_stub_resolver() {
        assert!(uses_local_stub("# x\nnameserver 127.0.0.53\noptions edns0\n"));
        assert!(!uses_local_stub("nameserver 192.0.2.1\n"));
    }
}
