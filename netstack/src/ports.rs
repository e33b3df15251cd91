//! `-p [HOST-IP:][HOST-PORT:]CONTAINER-PORT[/tcp|/udp]`: published ports.

use crate::Error;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One host port forwarded to one container port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortMapping {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

impl PortMapping {
    /// As `docker ps` and `docker port` show it: `0.0.0.0:8080->80/tcp`.
    pub fn display(&self) -> String {
        let ip = match self.host_ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        format!("{ip}:{}->{}/{}", self.host_port, self.container_port, self.protocol)
    }
}

impl fmt::Display for PortMapping {
    /// `IP:HOST-PORT:CONTAINER-PORT/PROTO`, which `parse_publish` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = match self.host_ip {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        write!(f, "{ip}:{}:{}/{}", self.host_port, self.container_port, self.protocol)
    }
}

/// Parses one `-p` value, expanding ranges; a missing host port is chosen
/// by the kernel (a free ephemeral port), as Docker does.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, Error> {
    let bad = |why: &str| Error::Publish { spec: spec.to_string(), why: why.to_string() };
    let (addr_ports, protocol) = match spec.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some(_) => return Err(bad("the protocol must be tcp or udp")),
        None => (spec, Protocol::Tcp),
    };
    // An IPv6 host address comes in brackets: [::1]:8080:80.
    let (host_ip, ports) = match addr_ports.strip_prefix('[') {
        Some(rest) => {
            let (ip, ports) = rest.split_once("]:").ok_or_else(|| bad("expected [IPv6]:HOST-PORT:CONTAINER-PORT"))?;
            (Some(ip), ports)
        }
        None => match addr_ports.matches(':').count() {
            2 => {
                let (ip, ports) = addr_ports.split_once(':').unwrap_or_default();
                (Some(ip), ports)
            }
            0 | 1 => (None, addr_ports),
            _ => return Err(bad("too many ':'")),
        },
    };
    let host_ip = match host_ip.filter(|ip| !ip.is_empty()) {
        Some(ip) => ip.parse().map_err(|_| bad("the host address is not an IP address"))?,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    let (host, container) = match ports.split_once(':') {
        Some((h, c)) => (Some(h).filter(|h| !h.is_empty()), c),
        None => (None, ports),
    };
    let container = port_range(container).ok_or_else(|| bad("container ports must be 1-65535 or a range A-B"))?;
    let host = match host {
        Some(h) => port_range(h).ok_or_else(|| bad("host ports must be 1-65535 or a range A-B"))?,
        None if container.0 == container.1 => {
            let port = free_port(host_ip, protocol).map_err(|e| bad(&format!("no free host port: {e}")))?;
            (port, port)
        }
        None => return Err(bad("a container port range needs a host port range")),
    };
    if host.1 - host.0 != container.1 - container.0 {
        return Err(bad("the host and container ranges differ in length"));
    }
    Ok((0..=container.1 - container.0)
        .map(|i| PortMapping { host_ip, host_port: host.0 + i, container_port: container.0 + i, protocol })
        .collect())
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    match s.split_once('-') {
        Some((a, b)) => Some((port(a)?, port(b)?)).filter(|(a, b)| a <= b),
        None => port(s).map(|p| (p, p)),
    }
}

fn free_port(ip: IpAddr, protocol: Protocol) -> std::io::Result<u16> {
    let addr = SocketAddr::new(ip, 0);
    match protocol {
        Protocol::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        Protocol::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

/// Fails, naming the first one, if a host port is taken: better one clear
/// line before the container starts than a helper dying after.
pub fn check_available(ports: &[PortMapping]) -> Result<(), Error> {
    for p in ports {
        let addr = SocketAddr::new(p.host_ip, p.host_port);
        let bound = match p.protocol {
            Protocol::Tcp => TcpListener::bind(addr).map(drop),
            Protocol::Udp => UdpSocket::bind(addr).map(drop),
        };
        if let Err(e) = bound {
            return Err(Error::PortTaken { mapping: *p, source: e });
        }
    }
    Ok(())
}

impl FromStr for PortMapping {
    type Err = Error;
    /// Reads back what Display wrote (one mapping, ports given).
    fn from_str(s: &str) -> Result<Self, Error> {
        match parse_publish(s)?.as_slice() {
            [one] => Ok(*one),
            _ => Err(Error::Publish { spec: s.to_string(), why: "expected one port".into() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortMapping {
        let v = parse_publish(s).unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v[0]
    }

    #[test]
    fn docker_forms() {
        let p = one("8080:80");
        assert_eq!(
            (p.host_ip.to_string(), p.host_port, p.container_port, p.protocol),
            ("0.0.0.0".into(), 8080, 80, Protocol::Tcp)
        );
        let p = one("127.0.0.1:5353:53/udp");
        assert_eq!(
            (p.host_ip.to_string(), p.host_port, p.container_port, p.protocol),
            ("127.0.0.1".into(), 5353, 53, Protocol::Udp)
        );
        let p = one("[::1]:8443:443");
        assert_eq!((p.host_ip.to_string(), p.host_port), ("::1".into(), 8443));
        let p = one("127.0.0.1::80");
        assert!(p.host_port > 0 && p.container_port == 80);
        let r = parse_publish("9000-9002:7000-7002/udp").unwrap();
        assert_eq!(
            r.iter().map(|p| (p.host_port, p.container_port)).collect::<Vec<_>>(),
            [(9000, 7000), (9001, 7001), (9002, 7002)]
        );
        for p in [one("8080:80"), one("[::1]:8443:443/udp")] {
            assert_eq!(p.to_string().parse::<PortMapping>().unwrap(), p);
        }
    }

    #[test]
    fn bad_forms_say_why() {
        for (s, why) in [
            ("80/sctp", "tcp or udp"),
            ("0:80", "host ports"),
            ("8080:70000", "container ports"),
            ("1-3:1-2", "differ in length"),
            ("x.y:1:2", "not an IP"),
            ("7000-7002", "needs a host port range"),
        ] {
            let e = parse_publish(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn a_taken_port_is_named() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let e = check_available(&parse_publish(&format!("127.0.0.1:{port}:80")).unwrap()).unwrap_err();
        assert!(e.to_string().starts_with(&format!("host port 127.0.0.1:{port}/tcp is already in use")), "{e}");
    }
}
