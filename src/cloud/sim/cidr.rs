//! IPv4 CIDR blocks: parsing, containment and overlap, for the VPC and subnet range rules.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    base: u32,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n` with the host bits zero; None otherwise.
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = text.split_once('/')?;
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let octets: Vec<u8> = addr
            .split('.')
            .map(|o| o.parse().ok())
            .collect::<Option<_>>()?;
        let [a, b, c, d] = octets[..] else {
            return None;
        };
        let base = u32::from_be_bytes([a, b, c, d]);
        let cidr = Cidr { base, prefix };
        (base & cidr.mask() == base).then_some(cidr)
    }

    pub(crate) fn prefix(self) -> u8 {
        self.prefix
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    /// `other` lies wholly inside `self`.
    pub(crate) fn contains(self, other: Cidr) -> bool {
        other.prefix >= self.prefix && other.base & self.mask() == self.base
    }

    pub(crate) fn overlaps(self, other: Cidr) -> bool {
        self.contains(other) || other.contains(self)
    }

    /// The `n`th address of the block (n taken modulo its size), as text.
    pub(crate) fn host(self, n: u64) -> String {
        let size = 1u64 << (32 - self.prefix);
        let [a, b, c, d] = (self.base + (n % size) as u32).to_be_bytes();
        format!("{a}.{b}.{c}.{d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_aligned_ipv4_blocks() {
        let cases = [
            ("10.0.0.0/16", true, "aligned /16"),
            ("0.0.0.0/0", true, "the default route"),
            ("10.0.1.0/16", false, "host bits set"),
            ("10.0.0.0/33", false, "prefix too long"),
            ("10.0.0/16", false, "three octets"),
            ("10.0.0.256/32", false, "octet out of range"),
            ("::/0", false, "IPv6 is not IPv4"),
        ];
        for (text, ok, why) in cases {
            assert_eq!(Cidr::parse(text).is_some(), ok, "{text}: {why}");
        }
    }

    #[test]
    fn containment_and_overlap() {
        let p = |s| Cidr::parse(s).unwrap();
        assert!(
            p("10.0.0.0/16").contains(p("10.0.1.0/24")),
            "subnet inside its VPC"
        );
        assert!(
            !p("10.0.0.0/16").contains(p("10.1.0.0/24")),
            "outside the VPC"
        );
        assert!(
            p("10.0.0.0/24").overlaps(p("10.0.0.128/25")),
            "nested blocks overlap"
        );
        assert!(
            !p("10.0.0.0/24").overlaps(p("10.0.1.0/24")),
            "neighbours do not"
        );
        assert_eq!(p("10.0.1.0/24").host(10), "10.0.1.10");
    }
}
