//! Field selector parser, a port of `k8s.io/apimachinery/pkg/fields/selector.go`
//! (terms split on unescaped `,`, operators `!=`, `==`, `=`, values unescaped
//! with `\\`, `\,`, `\=`), plus evaluation of a dotted path against a JSON object.

use std::fmt;

use serde_json::Value;

/// `field=value` (`==` too) or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    /// true for `!=`.
    pub not_equal: bool,
}

/// AND of field terms, in the order Go keeps them (terms sorted as raw strings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// True when every term matches. The field is looked up as a dotted path
    /// (`metadata.name`, `involvedObject.uid`, `type`); a missing or null field
    /// reads as `""`, so `x!=v` matches objects without `x`. Booleans and numbers
    /// read as their JSON text (`true`, `3`).
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let got = field_value(obj, &r.field);
            (got == r.value) != r.not_equal
        })
    }

    /// True when the selector restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The field names used, in order, so a server can reject unsupported ones
    /// (kube-apiserver answers `field label not supported: <name>`).
    pub fn fields(&self) -> Vec<&str> {
        self.requirements.iter().map(|r| r.field.as_str()).collect()
    }

    /// Go `RequiresExactMatch`: the value an `=`/`==` term demands of `field`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| !r.not_equal && r.field == field)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// Go `String()`: `f=v` / `f!=v` joined by `,`, values escaped again.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| {
                let op = if r.not_equal { "!=" } else { "=" };
                format!("{}{}{}", r.field, op, escape_value(&r.value))
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Read a dotted path as the string a field selector compares with.
pub fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for seg in path.split('.') {
        match cur.get(seg) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Go `EscapeValue`: `\` → `\\`, `,` → `\,`, `=` → `\=`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Go `UnescapeValue`, with its error texts (the rune is printed as a number, as `%v` of a rune does).
pub fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if matches!(c, '\\' | ',' | '=') {
                out.push(c);
            } else {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if rest.starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// Parse a field selector string (`fieldSelector=` query parameter).
/// Empty terms are skipped; a bare `=` term (empty field and value) is
/// dropped like Go's transform step does.
pub fn parse_field_selector(s: &str) -> Result<FieldSelector, String> {
    let mut parts = split_terms(s);
    parts.sort_unstable();
    let mut reqs = Vec::new();
    for part in parts {
        if part.is_empty() {
            continue;
        }
        let Some((lhs, op, rhs)) = split_term(part) else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{part}'"
            ));
        };
        let value = unescape_value(rhs)?;
        if lhs.is_empty() && value.is_empty() {
            continue;
        }
        reqs.push(FieldRequirement {
            field: lhs.to_string(),
            value,
            not_equal: op == "!=",
        });
    }
    Ok(FieldSelector { requirements: reqs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Value {
        json!({
            "metadata": {"name": "ev1", "namespace": "ns1"},
            "involvedObject": {"uid": "u-1", "kind": "Pod"},
            "type": "Warning",
            "count": 3,
            "spec": {"unschedulable": true}
        })
    }

    #[test]
    fn matching_table() {
        let obj = event();
        let cases: &[(&str, &str, bool)] = &[
            ("empty selector matches", "", true),
            ("= on metadata.name", "metadata.name=ev1", true),
            ("== is the same as =", "metadata.name==ev1", true),
            ("= with another value", "metadata.name=ev2", false),
            ("!= with another value", "metadata.namespace!=other", true),
            ("!= with the same value", "metadata.namespace!=ns1", false),
            ("nested path", "involvedObject.uid=u-1", true),
            ("top-level field", "type=Warning", true),
            (
                "AND of two terms",
                "type=Warning,involvedObject.kind=Pod",
                true,
            ),
            (
                "AND with a false term",
                "type=Warning,involvedObject.kind=Node",
                false,
            ),
            (
                "missing field reads as empty: != matches",
                "spec.nodeName!=node-1",
                true,
            ),
            (
                "missing field reads as empty: = '' matches",
                "spec.nodeName=",
                true,
            ),
            (
                "missing field: = value fails",
                "status.phase=Running",
                false,
            ),
            ("number compares as its text", "count=3", true),
            ("bool compares as its text", "spec.unschedulable=true", true),
            ("trailing comma is ignored", "type=Warning,", true),
            ("bare = term is dropped", "=", true),
        ];
        for (what, sel, want) in cases {
            let s = parse_field_selector(sel).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(s.matches(&obj), *want, "{what}: {sel}");
        }
    }

    #[test]
    fn escaping_table() {
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            (
                "escaped comma stays in the value",
                r"metadata.name=a\,b",
                Ok("a,b"),
            ),
            (
                "escaped equals stays in the value",
                r"metadata.name=a\=b",
                Ok("a=b"),
            ),
            ("escaped backslash", r"metadata.name=a\\b", Ok(r"a\b")),
            (
                "unknown escape is refused",
                r"metadata.name=a\b",
                Err(r"invalid field selector: invalid escape sequence: \b"),
            ),
            (
                "dangling backslash is refused",
                r"metadata.name=a\",
                Err(r"invalid field selector: invalid escape sequence: \"),
            ),
            (
                "unescaped = in value (rune printed as number)",
                "metadata.name=a=b",
                Err("invalid field selector: unescaped character in value: 61"),
            ),
        ];
        for (what, sel, want) in cases {
            let got = parse_field_selector(sel).map(|s| s.requirements[0].value.clone());
            assert_eq!(
                got,
                want.map(str::to_string).map_err(str::to_string),
                "{what}"
            );
        }
        let s = parse_field_selector(r"metadata.name=a\,b").unwrap();
        assert!(
            s.matches(&json!({"metadata": {"name": "a,b"}})),
            "escaped value matches literally"
        );
        assert_eq!(
            s.to_string(),
            r"metadata.name=a\,b",
            "String() escapes again"
        );
    }

    #[test]
    fn errors_and_introspection() {
        assert_eq!(
            parse_field_selector("metadata.name"),
            Err("invalid selector: 'metadata.name'; can't understand 'metadata.name'".to_string()),
            "a term without operator is refused with Go's text"
        );
        let s = parse_field_selector("type=Normal,involvedObject.uid!=x").unwrap();
        assert_eq!(
            s.fields(),
            vec!["involvedObject.uid", "type"],
            "fields() in sorted term order"
        );
        assert_eq!(
            s.requires_exact_match("type"),
            Some("Normal"),
            "exact match on ="
        );
        assert_eq!(
            s.requires_exact_match("involvedObject.uid"),
            None,
            "!= is not exact"
        );
        assert!(
            parse_field_selector("").unwrap().is_empty(),
            "empty string is empty selector"
        );
    }
}
