//! Name and label validation with the exact messages of
//! `k8s.io/apimachinery/pkg/util/validation` (v1.32), plus the
//! `generateName` rule of `k8s.io/apiserver/pkg/storage/names`.
//!
//! Every `is_*`/`dns*` function returns the list of problems, empty when the
//! value is valid, exactly like the Go functions (`[]string`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Max length of a DNS-1123 label (and of a qualified name's name part).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Max length of a DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Max length of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
const QUALIFIED_NAME_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

/// `must be no more than N characters` (Go `MaxLenError`).
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `must be non-empty` (Go `EmptyError`).
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

/// Go `RegexError`: `msg (e.g. 'a',  or 'b', regex used for validation is 'fmt')`.
/// The double space after each comma is what the Go code produces.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(ex);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1123_label(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

/// `^label(\.label)*$`
fn matches_dns1123_subdomain(v: &str) -> bool {
    v.split('.').all(matches_dns1123_label)
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn matches_qualified_name(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// Go `IsDNS1123Label`: used for Namespace names.
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Go `IsDNS1123Subdomain`: used for ConfigMap, Secret, Event, Lease, CRD names.
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Go `maskTrailingDash`: used when validating a `generateName` prefix.
/// The `len-2` slice is the upstream quirk, reproduced on purpose.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let cut = name.len() - 2;
        if name.is_char_boundary(cut) {
            return format!("{}a", &name[..cut]);
        }
    }
    name.to_string()
}

/// Go `NameIsDNSSubdomain(name, prefix)`: with `prefix` (a `generateName`),
/// a trailing dash is allowed.
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        dns1123_subdomain(name)
    }
}

/// Go `ValidateNamespaceName` (`NameIsDNSLabel`): with `prefix`, a trailing dash is allowed.
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        dns1123_label(&mask_trailing_dash(name))
    } else {
        dns1123_label(name)
    }
}

/// Go `IsQualifiedName`: label keys, annotation keys, finalizer names.
pub fn qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.len() {
        1 => parts[0],
        2 => {
            let prefix = parts[0];
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                for m in dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            parts[1]
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Go `IsValidLabelValue`.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Go `IsConfigMapKey`: keys of ConfigMap `data`/`binaryData` and Secret `data`/`stringData`.
pub fn config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    if !ok {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_string());
    } else if value == ".." {
        errs.push("must not be '..'".to_string());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// Length of the random suffix `generateName` appends.
pub const GENERATE_NAME_RANDOM_LENGTH: usize = 5;
/// Longest prefix kept by `generateName` (63 - 5): the prefix is cut to this
/// many bytes, whatever the resource's own name limit is.
pub const MAX_GENERATED_NAME_LENGTH: usize = 63 - GENERATE_NAME_RANDOM_LENGTH;
/// Alphabet of `k8s.io/apimachinery/pkg/util/rand.String` (no vowels, no 0/1/3).
pub const RANDOM_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// `names.SimpleNameGenerator.GenerateName`: `prefix[:58] + rand5`.
/// (Go slices bytes; here the cut backs off to a char boundary so the result
/// stays valid UTF-8, which only matters for names that fail validation anyway.)
pub fn generate_name(prefix: &str, rand5: &str) -> String {
    let mut cut = prefix.len().min(MAX_GENERATED_NAME_LENGTH);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &prefix[..cut], rand5)
}

static RNG_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Five characters from [`RANDOM_ALPHABET`], from a xorshift64* generator
/// seeded by the clock and a process-wide counter (so two calls in the same
/// nanosecond still differ). Not cryptographic; neither is the Go one.
pub fn random_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = RNG_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut x = nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    if x == 0 {
        x = 0x2545_F491_4F6C_DD1D;
    }
    let alphabet = RANDOM_ALPHABET.as_bytes();
    let mut out = String::with_capacity(GENERATE_NAME_RANDOM_LENGTH);
    for _ in 0..GENERATE_NAME_RANDOM_LENGTH {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        out.push(alphabet[((r >> 32) % alphabet.len() as u64) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    #[test]
    fn dns1123_subdomain_table() {
        let long = "a".repeat(254);
        let max = "a".repeat(253);
        let cases: Vec<(&str, &str, Vec<&str>)> = vec![
            ("simple name is valid", "my-config", vec![]),
            ("dots are allowed in a subdomain", "example.com", vec![]),
            ("digits may start a name", "0abc", vec![]),
            ("253 characters is the limit", &max, vec![]),
            ("upper case is rejected", "MyConfig", vec![SUBDOMAIN_MSG]),
            ("underscore is rejected", "my_config", vec![SUBDOMAIN_MSG]),
            ("leading dash is rejected", "-abc", vec![SUBDOMAIN_MSG]),
            ("trailing dot is rejected", "abc.", vec![SUBDOMAIN_MSG]),
            ("empty label between dots", "a..b", vec![SUBDOMAIN_MSG]),
            ("empty name is rejected", "", vec![SUBDOMAIN_MSG]),
            (
                "too long reports the length message only",
                &long,
                vec!["must be no more than 253 characters"],
            ),
        ];
        for (what, input, want) in cases {
            assert_eq!(dns1123_subdomain(input), want, "{what}");
        }
        let both = format!("{}A", "a".repeat(253));
        assert_eq!(
            dns1123_subdomain(&both),
            vec!["must be no more than 253 characters", SUBDOMAIN_MSG],
            "too long and invalid reports both, length first"
        );
    }

    #[test]
    fn dns1123_label_table() {
        let cases: Vec<(&str, String, Vec<String>)> = vec![
            ("plain label is valid", "default".into(), vec![]),
            ("63 characters ok", "a".repeat(63), vec![]),
            (
                "64 characters too long",
                "a".repeat(64),
                vec!["must be no more than 63 characters".into()],
            ),
            (
                "a valid subdomain with dots says 'must not contain dots'",
                "a.b".into(),
                vec!["must not contain dots".into()],
            ),
            (
                "underscore gives the regex message",
                "a_b".into(),
                vec![LABEL_MSG.into()],
            ),
        ];
        for (what, input, want) in cases {
            assert_eq!(dns1123_label(&input), want, "{what}");
        }
    }

    #[test]
    fn generate_name_prefix_rules() {
        let cases: Vec<(&str, String, String)> = vec![
            (
                "short prefix is kept whole",
                "web-".into(),
                "web-abcde".into(),
            ),
            (
                "empty prefix gives just the suffix",
                "".into(),
                "abcde".into(),
            ),
            (
                "58-byte prefix is kept whole (result 63)",
                "p".repeat(58),
                format!("{}abcde", "p".repeat(58)),
            ),
            (
                "longer prefix is cut to 58 bytes",
                "p".repeat(100),
                format!("{}abcde", "p".repeat(58)),
            ),
        ];
        for (what, prefix, want) in cases {
            assert_eq!(generate_name(&prefix, "abcde"), want, "{what}");
            assert!(
                generate_name(&prefix, "abcde").len() <= 63,
                "{what}: fits 63"
            );
        }
    }

    #[test]
    fn random_suffix_uses_the_k8s_alphabet() {
        let a = random_suffix();
        let b = random_suffix();
        assert_eq!(a.len(), 5, "five characters");
        assert!(
            a.chars().all(|c| RANDOM_ALPHABET.contains(c)),
            "alphabet only: {a}"
        );
        assert_ne!(a, b, "successive calls differ (counter mixes in)");
        assert!(
            dns1123_label(&generate_name("x-", &a)).is_empty(),
            "generated names are valid DNS labels"
        );
    }

    #[test]
    fn generate_name_prefix_validation_allows_trailing_dash() {
        assert!(
            name_is_dns_subdomain("my-prefix-", true).is_empty(),
            "prefix mode masks the dash"
        );
        assert_eq!(
            name_is_dns_subdomain("my-prefix-", false),
            vec![SUBDOMAIN_MSG],
            "name mode rejects it"
        );
        assert!(
            name_is_dns_label("ns-", true).is_empty(),
            "namespace generateName"
        );
        assert!(
            !name_is_dns_label("-", true).is_empty(),
            "a lone dash is still invalid"
        );
    }

    #[test]
    fn qualified_name_and_label_value_messages() {
        let name_regex = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        let cases: Vec<(&str, &str, Vec<String>)> = vec![
            ("plain key", "app", vec![]),
            ("prefixed key", "example.com/app", vec![]),
            ("bad name part", "-app", vec![name_regex.into()]),
            (
                "empty prefix",
                "/app",
                vec!["prefix part must be non-empty".into()],
            ),
            (
                "bad prefix gets the subdomain message prefixed",
                "Example.com/app",
                vec![format!("prefix part {SUBDOMAIN_MSG}")],
            ),
            (
                "empty name part",
                "example.com/",
                vec!["name part must be non-empty".into(), name_regex.into()],
            ),
            (
                "two slashes",
                "a/b/c",
                vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into()],
            ),
        ];
        for (what, input, want) in cases {
            assert_eq!(qualified_name(input), want, "{what}");
        }
        assert!(label_value("").is_empty(), "empty label value is valid");
        assert!(
            label_value("my_value.1").is_empty(),
            "underscore and dot inside"
        );
        assert_eq!(
            label_value("-x"),
            vec![
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ],
            "label value message"
        );
        assert_eq!(
            label_value(&"v".repeat(64)),
            vec!["must be no more than 63 characters"],
            "label value length"
        );
    }

    #[test]
    fn config_map_key_rules() {
        assert!(
            config_map_key("app.properties").is_empty(),
            "dotted key is fine"
        );
        assert_eq!(
            config_map_key(".."),
            vec!["must not be '..'"],
            "'..' is refused"
        );
        assert_eq!(
            config_map_key("..x"),
            vec!["must not start with '..'"],
            "'..' prefix refused"
        );
        assert_eq!(
            config_map_key("a b").len(),
            1,
            "space refused with the regex message"
        );
    }
}
