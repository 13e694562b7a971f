//! Which addresses a metadata document may be fetched from. The document URL comes from an
//! anonymous request, so the fetch must never reach the server's own network: loopback,
//! private and shared (CGNAT) ranges, link-local (where the cloud instance metadata services
//! live), multicast, and every reserved or special-purpose range. IPv6 forms that embed an IPv4
//! address (mapped, NAT64, 6to4) are judged by that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Loopback,
    Private,
    SharedAddressSpace,
    LinkLocal,
    CloudMetadata,
    Multicast,
    Unspecified,
    Reserved,
    Documentation,
}

impl Refusal {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private-network address",
            Self::SharedAddressSpace => "a carrier-grade NAT (shared) address",
            Self::LinkLocal => "a link-local address",
            Self::CloudMetadata => "a cloud instance metadata address",
            Self::Multicast => "a multicast or broadcast address",
            Self::Unspecified => "the unspecified address",
            Self::Reserved => "a reserved or special-purpose address",
            Self::Documentation => "a documentation or benchmarking address",
        }
    }
}

/// `None` when the address is a public unicast address a document may be fetched from.
pub fn refusal(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn refusal_v4(ip: Ipv4Addr) -> Option<Refusal> {
    use Refusal::*;
    const RULES: &[([u8; 4], u32, Refusal)] = &[
        ([169, 254, 169, 254], 32, CloudMetadata),
        ([0, 0, 0, 0], 8, Unspecified),
        ([10, 0, 0, 0], 8, Private),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([127, 0, 0, 0], 8, Loopback),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([172, 16, 0, 0], 12, Private),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([192, 168, 0, 0], 16, Private),
        ([198, 18, 0, 0], 15, Documentation),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([224, 0, 0, 0], 4, Multicast),
        ([255, 255, 255, 255], 32, Multicast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    RULES
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

fn v6(segments: [u16; 8]) -> Ipv6Addr {
    Ipv6Addr::from(segments)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<Refusal> {
    use Refusal::*;
    if ip.is_unspecified() {
        return Some(Unspecified);
    }
    if ip.is_loopback() {
        return Some(Loopback);
    }
    // IPv4-mapped (::ffff:a.b.c.d): the IPv4 address is what the socket reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    let bits = u128::from(ip);
    let embedded = |shift: u32| Ipv4Addr::from(((bits >> shift) & 0xffff_ffff) as u32);
    // NAT64 (64:ff9b::/96): the last 32 bits are the IPv4 destination.
    if in_v6(ip, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        return refusal_v4(embedded(0));
    }
    // 6to4 (2002::/16): bits 16..48 are the IPv4 relay destination.
    if in_v6(ip, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        return refusal_v4(embedded(80));
    }
    let rules: [(Ipv6Addr, u32, Refusal); 11] = [
        // AWS's instance metadata service over IPv6 (inside the unique-local range).
        (
            v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254]),
            128,
            CloudMetadata,
        ),
        // IPv4-compatible (deprecated) ::/96 and the rest of ::/8.
        (v6([0, 0, 0, 0, 0, 0, 0, 0]), 8, Reserved),
        (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48, Private),
        (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64, Reserved),
        // Teredo (2001::/32) tunnels to an obfuscated IPv4 address; other 2001::/23 special use.
        (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23, Reserved),
        (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32, Documentation),
        (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20, Documentation),
        (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7, Private),
        (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10, LinkLocal),
        (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10, Private),
        (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8, Multicast),
    ];
    rules
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Option<Refusal> {
        refusal(raw.parse().expect("test address"))
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ok in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82b::200e",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(check(ok), None, "{ok}");
        }
    }

    #[test]
    fn internal_addresses_are_refused_with_a_reason() {
        use Refusal::*;
        let cases = [
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("::1", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.100.100.200", SharedAddressSpace),
            ("169.254.169.254", CloudMetadata),
            ("fd00:ec2::254", CloudMetadata),
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("fd12:3456::1", Private),
            ("fc00::1", Private),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("255.255.255.255", Multicast),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("198.18.0.1", Documentation),
            ("2001:db8::1", Documentation),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", CloudMetadata),
            ("::ffff:10.0.0.1", Private),
            ("::127.0.0.1", Reserved),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::a9fe:a9fe", CloudMetadata),
            ("2002:7f00:1::", Loopback),
            ("2002:a00:1::", Private),
        ];
        for (raw, why) in cases {
            assert_eq!(check(raw), Some(why), "{raw}");
        }
    }

    proptest::proptest! {
        /// Every IPv4 address and its IPv4-mapped IPv6 form get the same verdict.
        #[test]
        fn mapped_addresses_follow_their_ipv4_verdict(bits in proptest::num::u32::ANY) {
            let v4 = Ipv4Addr::from(bits);
            proptest::prop_assert_eq!(refusal(IpAddr::V4(v4)), refusal(IpAddr::V6(v4.to_ipv6_mapped())));
        }
    }
}
