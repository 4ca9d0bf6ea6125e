//! Source address lists: CIDR blocks (`203.0.113.0/24`, `2001:db8::/32`) or single
//! addresses, matched against the IP an INVITE came from.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the block. An IPv4-mapped IPv6 source (`::ffff:a.b.c.d`)
    /// matches IPv4 blocks.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_u32(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_u128(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mask_u32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask_u128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "expected an address or CIDR block (e.g. 203.0.113.0/24, 2001:db8::/32), got {s:?}"
            )
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A list of blocks; an address is allowed when any block contains it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Acl {
    blocks: Vec<Cidr>,
}

impl Acl {
    /// Parses every entry; the error names the first bad one.
    pub(crate) fn parse(entries: &[String]) -> Result<Self, String> {
        let blocks = entries
            .iter()
            .map(|e| e.parse())
            .collect::<Result<Vec<Cidr>, String>>()?;
        Ok(Self { blocks })
    }

    /// No blocks at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether a block contains `ip`.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_blocks() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")), "v4-mapped v6 source");
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7/32");
        assert!(one.contains(ip("192.0.2.7")));
        assert!(!one.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!(!all.contains(ip("2001:db8::1")));
    }

    #[test]
    fn v6_blocks() {
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(c.contains(ip("2001:db8:ffff::1")));
        assert!(!c.contains(ip("2001:db9::1")));
        assert!(!c.contains(ip("10.0.0.1")));
        let all: Cidr = "::/0".parse().unwrap();
        assert!(all.contains(ip("::1")));
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "10.0.0.0/33",
            "nowhere",
            "10.0.0.0/",
            "::/129",
            "1.2.3.4/-1",
        ] {
            let e = bad.parse::<Cidr>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
        let e = Acl::parse(&["10.0.0.0/8".into(), "x".into()]).unwrap_err();
        assert!(e.contains("\"x\""), "{e}");
    }

    #[test]
    fn acl_matches_any_block() {
        let acl = Acl::parse(&["127.0.0.0/8".into(), "2001:db8::1".into()]).unwrap();
        assert!(acl.contains(ip("127.9.9.9")));
        assert!(acl.contains(ip("2001:db8::1")));
        assert!(!acl.contains(ip("2001:db8::2")));
        assert!(Acl::default().is_empty());
    }
}
