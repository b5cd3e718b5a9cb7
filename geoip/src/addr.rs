use std::net::{IpAddr, Ipv4Addr};

/// The address a lookup uses: an IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`, as a dual-stack sshd reports IPv4 clients) becomes
/// the IPv4 address it carries; anything else is unchanged.
pub fn normalize(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// Addresses that are never a place: loopback (127.0.0.0/8, ::1), private
/// (RFC 1918: 10/8, 172.16/12, 192.168/16; ULA fc00::/7), link-local
/// (169.254/16, fe80::/10), unspecified (0.0.0.0, ::) and carrier-grade NAT
/// (100.64.0.0/10), also when written IPv4-mapped. A database may say
/// nothing or something arbitrary about them, so policy treats them as "no
/// location" (they never satisfy `country_in`, `new_country` or
/// `impossible_travel`).
///
/// The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
/// 2001:db8::/32) are *not* in this list: tests map them in their databases.
pub fn is_non_public(ip: IpAddr) -> bool {
    match normalize(ip) {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || is_cgnat(v4)
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
        }
    }
}

/// 100.64.0.0/10 (RFC 6598): a carrier's NAT pool, shared by its customers.
fn is_cgnat(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    a == 100 && (b & 0xc0) == 64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn non_public_ranges_and_their_mapped_forms() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.10.10",
            "0.0.0.0",
            "100.64.0.1",
            "100.127.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:100.100.1.1",
        ] {
            assert!(is_non_public(ip(a)), "{a} should be non-public");
        }
    }

    #[test]
    fn public_and_documentation_addresses_count() {
        for a in [
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.200",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "2a00:1450::1",
        ] {
            assert!(!is_non_public(ip(a)), "{a} should count as public");
        }
    }

    #[test]
    fn mapped_ipv6_normalizes_to_ipv4() {
        assert_eq!(normalize(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(normalize(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(normalize(ip("192.0.2.1")), ip("192.0.2.1"));
    }
}
