//! `meta.k8s.io/v1` `Table` responses (`kubectl get`) and the Kubernetes
//! JSONPath subset that printer columns use.
//!
//! Facts mirrored (kubernetes/kubernetes, staging/src/k8s.io/...):
//! * `apiextensions-apiserver/pkg/registry/customresource/tableconvertor/tableconvertor.go`:
//!   `Name` (string, format `name`) first, then one column per printer column
//!   (description defaults to `Custom resource definition column (in JSONPath
//!   format): <path>`). A cell is the FIRST result only (`results[0][0]`), never a
//!   join; a failed or empty lookup is `null`. `string` columns are printed with
//!   the JSONPath printer (maps/lists as JSON, `null` as `<no value>`), other types
//!   go through `cellForJSONValue`; `date` becomes a relative age (`5m`, `3d2h`).
//! * `apiextensions-apiserver/pkg/apihelpers` `serveDefaultColumnsIfEmpty`: a CRD
//!   without columns gets `Age` (`date`, `.metadata.creationTimestamp`).
//! * `apimachinery/pkg/util/duration.HumanDuration`, `meta/table.ConvertToHumanReadableDateType`.
//! * `apiserver/pkg/endpoints/handlers/response.go` `asTable`: `includeObject`
//!   `""`/`Metadata` -> `PartialObjectMetadata`, `Object` -> the object, `None` ->
//!   no object, anything else -> 400.
//! * `client-go/util/jsonpath/{parser,jsonpath}.go` for the path language.

use super::openapi::{CREATION_TIMESTAMP_DESC, NAME_DESC, ResourceInfo};
use serde_json::{Map, Value, json};

/// `includeObject` of `TableOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// The policy named by an `includeObject` value: `""` and `Metadata` mean
/// metadata, `None`/`Object` as named; anything else is `None` here and a 400
/// `unrecognized includeObject value` on the real server.
pub fn include_object_value(value: &str) -> Option<IncludeObject> {
    match value {
        "" | "Metadata" => Some(IncludeObject::Metadata),
        "None" => Some(IncludeObject::None),
        "Object" => Some(IncludeObject::Object),
        _ => None,
    }
}

/// The column definitions the server announces for a resource.
pub fn column_definitions(res: &ResourceInfo) -> Vec<Value> {
    let mut cols = vec![json!({
        "name": "Name", "type": "string", "format": "name",
        "description": NAME_DESC, "priority": 0,
    })];
    for c in effective_columns(res) {
        let path = str_field(&c, "jsonPath");
        let description = match str_field(&c, "description") {
            "" => format!("Custom resource definition column (in JSONPath format): {path}"),
            d => d.to_string(),
        };
        cols.push(json!({
            "name": str_field(&c, "name"),
            "type": str_field(&c, "type"),
            "format": str_field(&c, "format"),
            "description": description,
            "priority": c.get("priority").and_then(Value::as_i64).unwrap_or(0),
        }));
    }
    cols
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Printer columns, or the default `Age` column when there are none (CRDs
/// without columns, and built-ins in this server).
fn effective_columns(res: &ResourceInfo) -> Vec<Value> {
    if res.printer_columns.is_empty() {
        vec![json!({
            "name": "Age", "type": "date",
            "description": CREATION_TIMESTAMP_DESC,
            "jsonPath": ".metadata.creationTimestamp",
        })]
    } else {
        res.printer_columns.clone()
    }
}

/// A `meta.k8s.io/v1` `Table` for `objects`, ages relative to the system clock.
/// `list_meta` supplies `resourceVersion`/`continue`/`remainingItemCount`.
pub fn table(
    res: &ResourceInfo,
    objects: &[Value],
    include_object: IncludeObject,
    list_meta: Value,
) -> Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    table_at(res, objects, include_object, list_meta, now_ms)
}

/// [`table`] with an explicit clock (Unix milliseconds), for tests.
pub fn table_at(
    res: &ResourceInfo,
    objects: &[Value],
    include_object: IncludeObject,
    list_meta: Value,
    now_ms: i64,
) -> Value {
    let columns = effective_columns(res);
    let parsed: Vec<Option<Vec<Vec<Node>>>> = columns
        .iter()
        .map(|c| parse_template(str_field(c, "jsonPath")).ok())
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let name = obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let mut cells = vec![Value::String(name.to_string())];
            for (col, path) in columns.iter().zip(&parsed) {
                let first = path
                    .as_ref()
                    .and_then(|p| find_results(obj, p).ok())
                    .and_then(|r| r.into_iter().next())
                    .and_then(|r| r.into_iter().next());
                cells.push(match first {
                    None => Value::Null,
                    Some(v) => cell_for(str_field(col, "type"), &v, now_ms),
                });
            }
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array(cells));
            match include_object {
                IncludeObject::None => {}
                IncludeObject::Object => {
                    row.insert("object".into(), obj.clone());
                }
                IncludeObject::Metadata => {
                    row.insert(
                        "object".into(),
                        json!({
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                        }),
                    );
                }
            }
            Value::Object(row)
        })
        .collect();

    let mut metadata = Map::new();
    for key in ["resourceVersion", "continue", "remainingItemCount"] {
        match list_meta.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(v) => {
                metadata.insert(key.into(), v.clone());
            }
        }
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(res),
        "rows": rows,
    })
}

/// One cell from the first JSONPath result (`tableconvertor.go`).
fn cell_for(column_type: &str, value: &Value, now_ms: i64) -> Value {
    match column_type {
        "string" => Value::String(print_value(value)),
        "integer" => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => value.clone(),
            Value::Number(n) => n
                .as_f64()
                .map(|f| json!(f.trunc() as i64))
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        "number" => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => value.clone(),
            Value::Number(n) => float_value(n.as_f64().unwrap_or(0.0)),
            _ => Value::Null,
        },
        "boolean" => match value {
            Value::Bool(_) => value.clone(),
            _ => Value::Null,
        },
        "date" => match value {
            Value::String(s) if s.is_empty() || s == "null" => json!("<unknown>"),
            Value::String(s) => match parse_rfc3339_ms(s) {
                Some(ts) => Value::String(human_duration_ms(now_ms - ts)),
                None => json!("<invalid>"),
            },
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// Go encodes an integral float64 without a fraction (`3`, not `3.0`).
fn float_value(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

/// The JSONPath printer's text for one value (`PrintResults`): maps and lists
/// as compact JSON, strings raw, numbers as Go's `fmt` prints them, and a JSON
/// `null` as `<no value>`.
pub fn print_value(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => go_format_float(n.as_f64().unwrap_or(0.0)),
        Value::Array(_) | Value::Object(_) => go_json(v),
    }
}

/// Go `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029.
fn go_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Go's `fmt.Print(float64)`: `%g` with the shortest digits; exponent form
/// when the exponent is < -4 or >= 6 (or >= the digit count, when all digits
/// are integer digits and there are fewer than 6), as `strconv` decides.
pub fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:e}", f.abs()); // shortest digits: "1.234567e6"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut eprec = 6;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let sign = if f < 0.0 { "-" } else { "" };
    if exp < -4 || exp >= eprec {
        let frac = &digits[1..];
        let dot = if frac.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{}{dot}{frac}e{esign}{:02}", &digits[..1], exp.abs())
    } else {
        format!("{sign}{}", f.abs())
    }
}

/// `duration.HumanDuration` over milliseconds.
pub fn human_duration_ms(d_ms: i64) -> String {
    let seconds = d_ms / 1000;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d_ms / 60_000;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d_ms / 3_600_000;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        }
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        }
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// RFC 3339 (`time.RFC3339`, fractional seconds accepted) to Unix milliseconds.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut millis = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        millis = frac.parse::<i64>().ok()? * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match s.get(i..)? {
        "Z" => 0,
        rest if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            if rest.starts_with('-') { -total } else { total }
        }
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // days from civil (Howard Hinnant)
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

// ---------------------------------------------------------------------------
// JSONPath
// ---------------------------------------------------------------------------

/// Evaluates a Kubernetes JSONPath (`.a.b`, `{.a.b}`, `.a[0]`, `.a[*].b`,
/// `[?(@.type=="Ready")]`, `['key']`, `..name`, unions) against `obj` and
/// returns the results of its first expression; a missing key gives an empty
/// list, as does any evaluation error (the table then shows `null`).
///
/// As in `client-go/util/jsonpath`, a bracketed key is re-parsed as a dotted
/// path, so `['a.b']` means `.a.b`; a key containing dots must be escaped:
/// `['a\.b']` (or `.a\.b`).
#[cfg(test)]
pub fn jsonpath(obj: &Value, path: &str) -> Vec<Value> {
    parse_template(path)
        .and_then(|p| find_results(obj, &p))
        .ok()
        .and_then(|r| r.into_iter().next())
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Field(String),
    Wildcard,
    Array([Param; 3]),
    Filter {
        left: Vec<Node>,
        right: Vec<Node>,
        op: String,
    },
    Recursive,
    Union(Vec<Vec<Node>>),
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Param {
    value: i64,
    known: bool,
    derived: bool,
}

/// A template: text outside `{}` becomes a text expression. A path with no
/// braces is wrapped, as the CRD table convertor does (`{%s}`).
fn parse_template(text: &str) -> Result<Vec<Vec<Node>>, String> {
    let text = if text.contains('{') {
        text.to_string()
    } else {
        format!("{{{text}}}")
    };
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let mut p = Parser::new(&rest[1..]);
                let nodes = p.parse_action(true)?;
                out.push(nodes);
                rest = &rest[1 + p.pos..];
            }
            Some(i) => {
                out.push(vec![Node::Text(rest[..i].to_string())]);
                rest = &rest[i..];
            }
            None => {
                out.push(vec![Node::Text(rest.to_string())]);
                rest = "";
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

fn is_terminator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
    )
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser { input, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Parses up to the closing `}` (consumed) when `braced`, else to the end.
    fn parse_action(&mut self, braced: bool) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                if braced {
                    self.pos += 1;
                    return Ok(nodes);
                }
                return Err("unexpected }".into());
            }
            if rest.starts_with("[?(") {
                nodes.push(self.parse_filter()?);
                continue;
            }
            if rest.starts_with("..") {
                if nodes.last() == Some(&Node::Recursive) {
                    return Err("invalid multiple recursive descent".into());
                }
                self.pos += 2;
                nodes.push(Node::Recursive);
                if self.peek().is_some_and(|c| c == '_' || c.is_alphanumeric()) {
                    nodes.push(self.parse_field());
                }
                continue;
            }
            let Some(c) = self.peek() else {
                return if braced {
                    Err("unclosed action".into())
                } else {
                    Ok(nodes)
                };
            };
            match c {
                '\r' | '\n' => return Err("unclosed action".into()),
                ' ' | '@' | '$' => self.pos += 1,
                '[' => nodes.push(self.parse_array()?),
                '"' | '\'' => nodes.push(self.parse_quote(c)?),
                '.' => {
                    self.pos += 1;
                    nodes.push(self.parse_field());
                }
                '+' | '-' => nodes.push(self.parse_number()?),
                c if c.is_ascii_digit() => nodes.push(self.parse_number()?),
                c if c == '_' || c.is_alphanumeric() => {
                    let start = self.pos;
                    while self.peek().is_some_and(|c| !is_terminator(c)) {
                        self.pos += self.peek().map_or(1, char::len_utf8);
                    }
                    match &self.input[start..self.pos] {
                        "true" => nodes.push(Node::Bool(true)),
                        "false" => nodes.push(Node::Bool(false)),
                        other => return Err(format!("unrecognized identifier {other}")),
                    }
                }
                other => return Err(format!("unrecognized character in action: {other:?}")),
            }
        }
    }

    /// A field name up to a terminator; `\x` escapes x and the backslash goes.
    fn parse_field(&mut self) -> Node {
        let mut name = String::new();
        let mut chars = self.rest().char_indices();
        let mut consumed = 0;
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                if let Some((j, n)) = chars.next() {
                    name.push(n);
                    consumed = j + n.len_utf8();
                } else {
                    consumed = i + 1;
                }
                continue;
            }
            if is_terminator(c) {
                break;
            }
            name.push(c);
            consumed = i + c.len_utf8();
        }
        self.pos += consumed;
        if name == "*" {
            Node::Wildcard
        } else {
            Node::Field(name)
        }
    }

    fn parse_number(&mut self) -> Result<Node, String> {
        let start = self.pos;
        if matches!(self.peek(), Some('+' | '-')) {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c == '.' || c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text = &self.input[start..self.pos];
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Node::Int(i));
        }
        text.parse::<f64>()
            .map(Node::Float)
            .map_err(|_| format!("cannot parse number {text}"))
    }

    fn parse_quote(&mut self, quote: char) -> Result<Node, String> {
        let rest = self.rest();
        let mut out = String::new();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '\n' => break,
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, other)) => out.push(other),
                    None => break,
                },
                c if c == quote => {
                    self.pos += i + 1;
                    return Ok(Node::Text(out));
                }
                c => out.push(c),
            }
        }
        Err("unterminated quoted string".into())
    }

    fn parse_array(&mut self) -> Result<Node, String> {
        let rest = self.rest();
        let Some(end) = rest
            .find([']', '\n'])
            .filter(|&e| rest.as_bytes()[e] == b']')
        else {
            return Err("unterminated array".into());
        };
        let mut text = &rest[1..end];
        self.pos += end + 1;
        if text == "*" {
            text = ":";
        }
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() > 1 {
            let mut union = Vec::new();
            for part in parts {
                let inner = format!("[{}]", part.trim_matches(' '));
                union.push(Parser::new(&inner).parse_action(false)?);
            }
            return Ok(Node::Union(union));
        }
        // dict key: '...' is re-parsed as a dotted field path
        if text.len() >= 2
            && text.starts_with('\'')
            && text.ends_with('\'')
            && !text[1..text.len() - 1].contains('\'')
        {
            let inner = format!(".{}", &text[1..text.len() - 1]);
            let nodes = Parser::new(&inner).parse_action(false)?;
            return Ok(match nodes.len() {
                1 => nodes.into_iter().next().unwrap_or(Node::Union(Vec::new())),
                _ => Node::Union(vec![nodes]),
            });
        }
        // slice: ^(-?\d*)(:-?\d*)?(:-?\d*)?$
        let fields: Vec<&str> = text.split(':').collect();
        let int_like = |s: &str| {
            let d = s.strip_prefix('-').unwrap_or(s);
            d.bytes().all(|b| b.is_ascii_digit())
        };
        if fields.len() > 3 || !fields.iter().all(|f| int_like(f)) {
            return Err(format!("invalid array index {text}"));
        }
        let mut params = [Param::default(); 3];
        for i in 0..3 {
            match fields.get(i) {
                Some(f) if !f.is_empty() => {
                    params[i] = Param {
                        value: f
                            .parse()
                            .map_err(|_| format!("array index {f} is not a number"))?,
                        known: true,
                        derived: false,
                    };
                }
                Some(_) if i > 0 => {} // present but empty: unknown
                _ if i == 1 && fields.len() == 1 => {
                    params[1] = Param {
                        value: params[0].value + 1,
                        known: true,
                        derived: true,
                    };
                }
                _ => {}
            }
        }
        Ok(Node::Array(params))
    }

    fn parse_filter(&mut self) -> Result<Node, String> {
        self.pos += 3;
        let start = self.pos;
        let bytes = self.input.as_bytes();
        let (mut begin, mut end, mut pair) = (false, false, b'"');
        let mut i = start;
        loop {
            let Some(&c) = bytes.get(i) else {
                return Err("unterminated filter".into());
            };
            i += 1;
            match c {
                b'\n' => return Err("unterminated filter".into()),
                b'"' | b'\'' => {
                    if !begin {
                        begin = true;
                        pair = c;
                    } else if bytes[i - 2] != b'\\' && c == pair {
                        end = true;
                    }
                }
                b')' if begin == end => break,
                _ => {}
            }
        }
        if bytes.get(i) != Some(&b']') {
            return Err("unclosed array expect ]".into());
        }
        let text = &self.input[start..i - 1];
        self.pos = i + 1;
        // ^([^!<>=]+)([!<>=]+)(.+?)$
        let is_op = |c: char| matches!(c, '!' | '<' | '>' | '=');
        let left_end = text.find(is_op);
        let parsed = left_end.filter(|&l| l > 0).and_then(|l| {
            let after = &text[l..];
            let op_len = after.find(|c| !is_op(c)).unwrap_or(after.len());
            let right = &after[op_len..];
            (!right.is_empty()).then(|| (&text[..l], &after[..op_len], right))
        });
        match parsed {
            None => Ok(Node::Filter {
                left: Parser::new(text).parse_action(false)?,
                right: Vec::new(),
                op: "exists".into(),
            }),
            Some((left, op, right)) => Ok(Node::Filter {
                left: Parser::new(left).parse_action(false)?,
                right: Parser::new(right).parse_action(false)?,
                op: op.to_string(),
            }),
        }
    }
}

fn find_results(obj: &Value, template: &[Vec<Node>]) -> Result<Vec<Vec<Value>>, String> {
    template
        .iter()
        .map(|nodes| eval_list(vec![obj.clone()], nodes))
        .collect()
}

fn eval_list(mut cur: Vec<Value>, nodes: &[Node]) -> Result<Vec<Value>, String> {
    for node in nodes {
        cur = eval(cur, node)?;
    }
    Ok(cur)
}

fn eval(input: Vec<Value>, node: &Node) -> Result<Vec<Value>, String> {
    match node {
        Node::Field(name) if name.is_empty() => Ok(input),
        Node::Field(name) => Ok(input
            .iter()
            .filter_map(|v| v.as_object().and_then(|o| o.get(name)).cloned())
            .collect()),
        Node::Wildcard => Ok(input
            .into_iter()
            .flat_map(|v| match v {
                Value::Object(o) => o.into_iter().map(|(_, v)| v).collect(),
                Value::Array(a) => a,
                _ => Vec::new(),
            })
            .collect()),
        Node::Array(params) => {
            let mut out = Vec::new();
            for v in input {
                match v {
                    Value::Null => continue,
                    Value::Array(a) => out.extend(slice(&a, params)?),
                    other => return Err(format!("{other} is not array or slice")),
                }
            }
            Ok(out)
        }
        Node::Filter { left, right, op } => {
            let mut out = Vec::new();
            for v in input {
                let Value::Array(items) = v else {
                    return Err(format!("{v} is not array or slice and cannot be filtered"));
                };
                for item in items {
                    let lefts = eval_list(vec![item.clone()], left);
                    if op == "exists" {
                        if lefts.is_ok_and(|l| !l.is_empty()) {
                            out.push(item);
                        }
                        continue;
                    }
                    let lefts = lefts?;
                    if lefts.len() != 1 {
                        return Err("can only compare one element at a time".into());
                    }
                    let rights = eval_list(vec![item.clone()], right)?;
                    if rights.len() != 1 {
                        return Err("can only compare one element at a time".into());
                    }
                    if compare(&lefts[0], &rights[0], op)? {
                        out.push(item);
                    }
                }
            }
            Ok(out)
        }
        Node::Recursive => {
            let mut out = Vec::new();
            for v in input {
                recurse(v, &mut out);
            }
            Ok(out)
        }
        Node::Union(lists) => {
            let mut out = Vec::new();
            for list in lists {
                out.extend(eval_list(input.clone(), list)?);
            }
            Ok(out)
        }
        Node::Text(t) => Ok(vec![Value::String(t.clone())]),
        Node::Int(i) => Ok(input.iter().map(|_| json!(i)).collect()),
        Node::Float(f) => Ok(input.iter().map(|_| json!(f)).collect()),
        Node::Bool(b) => Ok(input.iter().map(|_| json!(b)).collect()),
    }
}

/// `evalRecursive`: containers (not leaves) are collected with their descendants.
fn recurse(v: Value, out: &mut Vec<Value>) {
    let children: Vec<Value> = match &v {
        Value::Object(o) => o.values().cloned().collect(),
        Value::Array(a) => a.clone(),
        _ => return,
    };
    if children.is_empty() {
        return;
    }
    out.push(v);
    for c in children {
        recurse(c, out);
    }
}

fn slice(a: &[Value], params: &[Param; 3]) -> Result<Vec<Value>, String> {
    let len = a.len() as i64;
    let mut start = if params[0].known { params[0].value } else { 0 };
    if start < 0 {
        start += len;
    }
    let end = if params[1].derived {
        start + 1
    } else if params[1].known {
        if params[1].value < 0 {
            params[1].value + len
        } else {
            params[1].value
        }
    } else {
        len
    };
    if end != start {
        if start < 0 || start >= len {
            return Err(format!(
                "array index out of bounds: index {start}, length {len}"
            ));
        }
        if end > len {
            return Err(format!(
                "array index out of bounds: index {}, length {len}",
                end - 1
            ));
        }
    }
    if end < start {
        return Err(format!("invalid slice index {start} > {end}"));
    }
    Ok(a[start as usize..end as usize].to_vec())
}

#[derive(PartialEq, PartialOrd)]
enum Basic<'a> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

fn basic(v: &Value) -> Result<Basic<'_>, String> {
    match v {
        Value::Bool(b) => Ok(Basic::Bool(*b)),
        Value::String(s) => Ok(Basic::Str(s)),
        Value::Number(n) => Ok(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Basic::Int(i128::from(i)),
            (_, Some(u)) => Basic::Int(i128::from(u)),
            _ => Basic::Float(n.as_f64().unwrap_or(0.0)),
        }),
        _ => Err("invalid type for comparison".into()),
    }
}

/// Go template comparison: both sides must be the same basic kind.
fn compare(left: &Value, right: &Value, op: &str) -> Result<bool, String> {
    let (l, r) = (basic(left)?, basic(right)?);
    if std::mem::discriminant(&l) != std::mem::discriminant(&r) {
        return Err("incompatible types for comparison".into());
    }
    let ordered = !matches!(l, Basic::Bool(_));
    match op {
        "==" => Ok(l == r),
        "!=" => Ok(l != r),
        "<" if ordered => Ok(l < r),
        ">" if ordered => Ok(l > r),
        "<=" if ordered => Ok(l <= r),
        ">=" if ordered => Ok(l >= r),
        "<" | ">" | "<=" | ">=" => Err("invalid type for comparison".into()),
        other => Err(format!("unrecognized filter operator {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2025-01-10T12:00:00Z";

    fn now_ms() -> i64 {
        parse_rfc3339_ms(NOW).unwrap()
    }

    fn network(name: &str, created: &str, ready: &str, region: Option<&str>) -> Value {
        let mut obj = json!({
            "apiVersion": "hipaa.dev/v1alpha1",
            "kind": "HipaaNetwork",
            "metadata": {"name": name, "namespace": "prod", "creationTimestamp": created, "uid": "u-1", "resourceVersion": "42"},
            "spec": {"cidr": "10.0.0.0/16"},
            "status": {
                "vpcId": "vpc-123",
                "conditions": [
                    {"type": "Synced", "status": "True"},
                    {"type": "Ready", "status": ready},
                    {"type": "Drifted", "status": "False"},
                ],
            },
        });
        if let Some(r) = region {
            obj["spec"]["region"] = json!(r);
        }
        obj
    }

    fn hipaa_network_columns() -> ResourceInfo {
        let cond = |name: &str| json!({"name": name, "type": "string", "jsonPath": format!(".status.conditions[?(@.type==\"{name}\")].status")});
        ResourceInfo {
            group: "hipaa.dev".into(),
            version: "v1alpha1".into(),
            kind: "HipaaNetwork".into(),
            list_kind: "HipaaNetworkList".into(),
            plural: "hipaanetworks".into(),
            namespaced: true,
            schema: Some(json!({"type": "object"})),
            printer_columns: vec![
                cond("Ready"),
                cond("Synced"),
                cond("Drifted"),
                json!({"name": "VPC", "type": "string", "priority": 0, "jsonPath": ".status.vpcId", "description": "Cloud VPC id"}),
                json!({"name": "Region", "type": "string", "priority": 1, "jsonPath": ".spec.region"}),
                json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}),
            ],
            has_status_subresource: true,
        }
    }

    #[test]
    fn jsonpath_cases() {
        let obj = json!({
            "metadata": {"name": "n1", "labels": {"app.kubernetes.io/name": "web", "tier": "db"}, "annotations": null},
            "spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}], "ratio": 0.5, "on": true, "empty": []},
            "status": {"conditions": [
                {"type": "Synced", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "VpcPending"},
            ]},
        });
        // (path, expected results, what it proves)
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                ".status.conditions[?(@.type==\"Ready\")].status",
                json!(["False"]),
                "the Ready printer column",
            ),
            (
                "{.status.conditions[?(@.type==\"Ready\")].status}",
                json!(["False"]),
                "braced form is the same",
            ),
            (
                ".status.conditions[?(@.type=='Ready')].reason",
                json!(["VpcPending"]),
                "single-quoted literal",
            ),
            (
                ".status.conditions[?(@.type!=\"Ready\")].type",
                json!(["Synced"]),
                "!= filter",
            ),
            (
                ".status.conditions[?(@.reason)].type",
                json!(["Ready"]),
                "existence filter",
            ),
            (
                ".status.conditions[?(@.type==\"Gone\")].status",
                json!([]),
                "no match: empty",
            ),
            (
                ".spec.ports[?(@.port==443)].name",
                json!(["https"]),
                "integer literal vs integer",
            ),
            (
                ".spec.ports[?(@.port>=80)].name",
                json!(["http", "https"]),
                ">= on integers",
            ),
            (
                ".spec.ports[?(@.port==\"443\")].name",
                json!([]),
                "string vs integer is an error (Go template), so empty",
            ),
            (".spec.ports[0].port", json!([80]), "index"),
            (".spec.ports[-1].name", json!(["https"]), "negative index"),
            (
                ".spec.ports[5].name",
                json!([]),
                "out of bounds is an error, so empty",
            ),
            (".spec.empty[0]", json!([]), "index into empty array"),
            (
                ".spec.ports[*].name",
                json!(["http", "https"]),
                "wildcard over array",
            ),
            (".spec.ports[0:1].name", json!(["http"]), "slice"),
            (".spec.ports[0,1].port", json!([80, 443]), "union"),
            (".metadata.labels['tier']", json!(["db"]), "bracketed key"),
            (
                ".metadata.labels['app\\.kubernetes\\.io/name']",
                json!(["web"]),
                "escaped dots in a bracketed key",
            ),
            (
                ".metadata.labels.app\\.kubernetes\\.io/name",
                json!(["web"]),
                "escaped dots in a dotted key",
            ),
            (
                ".metadata.labels['app.kubernetes.io/name']",
                json!([]),
                "unescaped dots split the key, as upstream",
            ),
            (
                ".metadata.missing.deeper",
                json!([]),
                "missing keys allowed",
            ),
            (
                ".metadata.annotations",
                json!([null]),
                "explicit null is a result",
            ),
            (
                ".metadata.annotations.x",
                json!([]),
                "descending through null yields nothing",
            ),
            (".spec.ratio", json!([0.5]), "float"),
            (".spec.on", json!([true]), "bool"),
            (
                "..name",
                json!(["n1", "http", "https"]),
                "recursive descent",
            ),
            (
                ".status.conditions[?(@.type==\"Ready\")]",
                json!([{"type": "Ready", "status": "False", "reason": "VpcPending"}]),
                "filter result is the element",
            ),
            (
                ".spec.on[0]",
                json!([]),
                "index into a non-array is an error",
            ),
            (
                ".metadata.name[?(@.x==1)]",
                json!([]),
                "filter on a non-array is an error",
            ),
        ];
        for (path, want, why) in cases {
            assert_eq!(Value::Array(jsonpath(&obj, path)), want, "{why}: {path}");
        }
    }

    #[test]
    fn jsonpath_filter_errors_poison_the_whole_column() {
        // Upstream: an element without the compared field makes the filter fail
        // ("can only compare one element at a time"), so the cell is null even if
        // another element would match.
        let obj = json!({"status": {"conditions": [{"status": "x"}, {"type": "Ready", "status": "True"}]}});
        assert!(jsonpath(&obj, ".status.conditions[?(@.type==\"Ready\")].status").is_empty());
        // ...and a null list cannot be filtered either.
        assert!(
            jsonpath(
                &json!({"status": {"conditions": null}}),
                ".status.conditions[?(@.type==\"Ready\")]"
            )
            .is_empty()
        );
        // Parse errors give no results.
        for bad in [".a[", ".a[?(@.x==1)", ".a[\"k\"]", "{.a", ".a[x]"] {
            assert!(jsonpath(&obj, bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn table_for_crd_with_printer_columns() {
        let res = hipaa_network_columns();
        let objs = [
            network("net-a", "2025-01-10T11:55:00Z", "True", Some("us-east-1")),
            network("net-b", "2025-01-07T10:00:00Z", "False", None),
        ];
        let t = table_at(
            &res,
            &objs,
            IncludeObject::Metadata,
            json!({"resourceVersion": "99"}),
            now_ms(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"], json!({"resourceVersion": "99"}));
        // (index, name, type, format, priority): Name first, then the CRD columns in order.
        let cols = [
            (0, "Name", "string", "name", 0),
            (1, "Ready", "string", "", 0),
            (2, "Synced", "string", "", 0),
            (3, "Drifted", "string", "", 0),
            (4, "VPC", "string", "", 0),
            (5, "Region", "string", "", 1),
            (6, "Age", "date", "", 0),
        ];
        let defs = t["columnDefinitions"].as_array().unwrap();
        assert_eq!(defs.len(), cols.len());
        for (i, name, ty, format, priority) in cols {
            let d = &defs[i];
            assert_eq!(
                (
                    d["name"].as_str(),
                    d["type"].as_str(),
                    d["format"].as_str(),
                    d["priority"].as_i64()
                ),
                (Some(name), Some(ty), Some(format), Some(priority)),
                "column {i}"
            );
        }
        assert_eq!(
            defs[1]["description"],
            "Custom resource definition column (in JSONPath format): .status.conditions[?(@.type==\"Ready\")].status"
        );
        assert_eq!(
            defs[4]["description"], "Cloud VPC id",
            "declared description wins"
        );
        // Cells: first result only; missing Region is null; Age is relative like the real server.
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "net-a",
                "True",
                "True",
                "False",
                "vpc-123",
                "us-east-1",
                "5m"
            ])
        );
        assert_eq!(
            t["rows"][1]["cells"],
            json!(["net-b", "False", "True", "False", "vpc-123", null, "3d2h"])
        );
        assert_eq!(
            t["rows"][0]["object"],
            json!({
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": objs[0]["metadata"],
            })
        );
    }

    #[test]
    fn default_columns() {
        let mut crd_without = hipaa_network_columns();
        crd_without.printer_columns.clear();
        let builtin = ResourceInfo {
            kind: "ConfigMap".into(),
            version: "v1".into(),
            plural: "configmaps".into(),
            ..Default::default()
        };
        // (resource, proof): CRDs without columns and built-ins both get Name + Age.
        for (res, why) in [
            (crd_without, "CRD without additionalPrinterColumns"),
            (builtin, "built-in"),
        ] {
            let obj =
                json!({"metadata": {"name": "x", "creationTimestamp": "2025-01-10T11:59:30Z"}});
            let t = table_at(&res, &[obj], IncludeObject::None, Value::Null, now_ms());
            let names: Vec<&str> = t["columnDefinitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["Name", "Age"], "{why}");
            assert_eq!(t["columnDefinitions"][1]["type"], "date", "{why}");
            assert!(
                t["columnDefinitions"][1]["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("CreationTimestamp"),
                "{why}"
            );
            assert_eq!(t["rows"][0]["cells"], json!(["x", "30s"]), "{why}");
            assert_eq!(t["metadata"], json!({}), "{why}");
        }
    }

    #[test]
    fn include_object_variants() {
        let res = hipaa_network_columns();
        let obj = network("net-a", "2025-01-10T11:55:00Z", "True", None);
        // (policy, expected row.object (None = key absent))
        let cases = [
            (IncludeObject::None, None),
            (
                IncludeObject::Metadata,
                Some(
                    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}),
                ),
            ),
            (IncludeObject::Object, Some(obj.clone())),
        ];
        for (policy, want) in cases {
            let t = table_at(
                &res,
                std::slice::from_ref(&obj),
                policy,
                Value::Null,
                now_ms(),
            );
            assert_eq!(t["rows"][0].get("object").cloned(), want, "{policy:?}");
        }
        let empty = table_at(
            &res,
            &[],
            IncludeObject::Metadata,
            json!({"resourceVersion": "7", "continue": "", "remainingItemCount": 3}),
            now_ms(),
        );
        assert_eq!(empty["rows"], json!([]), "empty list still has rows: []");
        assert_eq!(
            empty["metadata"],
            json!({"resourceVersion": "7", "remainingItemCount": 3}),
            "empty continue omitted"
        );
    }

    #[test]
    fn cell_types_follow_cell_for_json_value() {
        let mk = |ty: &str, path: &str| ResourceInfo {
            printer_columns: vec![json!({"name": "C", "type": ty, "jsonPath": path})],
            ..Default::default()
        };
        let obj = json!({"metadata": {"name": "o"}, "spec": {
            "n": 3, "f": 2.75, "big": 1234567.0, "b": true, "s": "text", "m": {"k": "<v>"}, "l": [1, 2], "z": null,
            "t": "2025-01-10T09:00:00.500+01:00", "bad": "yesterday", "empty": "",
        }});
        // (column type, path, expected cell, what it proves)
        let cases = [
            ("integer", ".spec.n", json!(3), "integer"),
            ("integer", ".spec.f", json!(2), "float truncated to integer"),
            (
                "integer",
                ".spec.s",
                Value::Null,
                "string in integer column",
            ),
            ("number", ".spec.n", json!(3), "integer in number column"),
            ("number", ".spec.f", json!(2.75), "number"),
            ("boolean", ".spec.b", json!(true), "boolean"),
            (
                "boolean",
                ".spec.s",
                Value::Null,
                "non-bool in boolean column",
            ),
            ("string", ".spec.n", json!("3"), "numbers printed as text"),
            (
                "string",
                ".spec.f",
                json!("2.75"),
                "floats as Go prints them",
            ),
            (
                "string",
                ".spec.big",
                json!("1.234567e+06"),
                "Go %v exponent form",
            ),
            ("string", ".spec.b", json!("true"), "bool as text"),
            (
                "string",
                ".spec.m",
                json!("{\"k\":\"\\u003cv\\u003e\"}"),
                "maps as Go JSON",
            ),
            ("string", ".spec.l", json!("[1,2]"), "lists as JSON"),
            (
                "string",
                ".spec.z",
                json!("<no value>"),
                "null in string column",
            ),
            ("string", ".spec.missing", Value::Null, "missing is null"),
            (
                "date",
                ".spec.t",
                json!("3h59m"),
                "offset and fraction honoured (3h59m59.5s)",
            ),
            ("date", ".spec.bad", json!("<invalid>"), "unparseable date"),
            ("date", ".spec.empty", json!("<unknown>"), "empty date"),
            ("date", ".spec.n", Value::Null, "non-string date"),
            ("unknowntype", ".spec.s", Value::Null, "unknown column type"),
        ];
        for (ty, path, want, why) in cases {
            let t = table_at(
                &mk(ty, path),
                std::slice::from_ref(&obj),
                IncludeObject::None,
                Value::Null,
                now_ms(),
            );
            assert_eq!(t["rows"][0]["cells"][1], want, "{why}");
        }
    }

    #[test]
    fn human_duration_matches_apimachinery() {
        // (elapsed seconds, expected)
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 300, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (50 * 3600, "2d2h"),
            (72 * 3600, "3d"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (800 * 86400, "2y70d"),
            (8 * 365 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration_ms(secs * 1000), want, "{secs}s");
        }
    }

    #[test]
    fn go_float_formatting() {
        let cases = [
            (0.5, "0.5"),
            (3.0, "3"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
        ];
        for (f, want) in cases {
            assert_eq!(go_format_float(f), want, "{f}");
        }
    }

    #[test]
    fn rfc3339_parsing() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T01:00:00+01:00", Some(0)),
            ("2000-02-29T00:00:00Z", Some(951_782_400_000)),
            ("1970-01-01T00:00:00.5Z", Some(500)),
            ("2001-02-29T00:00:00Z", None),
            ("1970-01-01 00:00:00Z", None),
            ("1970-01-01T00:00:00", None),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_rfc3339_ms(s), want, "{s}");
        }
    }
}
