//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`, what
//! kubectl's and client-go's typed clients send for built-in kinds), decoded into the JSON
//! object the same client would have sent as JSON, so everything downstream (validation,
//! managed fields, storage, watch) sees what the JSON path sees.
//!
//! The wire format is the real server's: the magic `k8s\0`, then a `runtime.Unknown`
//! envelope (`typeMeta` with apiVersion and kind, `raw`, `contentEncoding`,
//! `contentType`) whose `raw` is the kind's own message, without apiVersion and kind. The
//! message types are `k8s-pb`'s (generated from Kubernetes' `generated.proto` files),
//! decoded with prost; the conversion to JSON is written here, one function per message,
//! because `k8s-pb` has no serde.
//!
//! Guarantees:
//! - The JSON follows the Go types' JSON tags field by field. Go writes every non-pointer
//!   field into protobuf, empty or not, so presence on the wire does not mean "set": a
//!   field that Go marshals with `omitempty` is left out when it holds its zero value, a
//!   pointer field (`*string`, `*bool`, `*int32`…) is kept whenever it was sent, and a field
//!   without `omitempty` is always there (`""`, `0`, `{}`, or `null` for an unset
//!   `metav1.Time` and a nil slice, as Go writes them).
//! - Well-known types as JSON has them: `metav1.Time` as RFC 3339 UTC with seconds,
//!   `metav1.MicroTime` with six fractional digits, `[]byte` (Secret `data`, ConfigMap
//!   `binaryData`, a webhook `caBundle`) as standard base64 with padding, `FieldsV1` and
//!   apiextensions `JSON` as the JSON they carry.
//! - Errors are 400 BadRequest with the real server's wording around them (`the object
//!   provided is unrecognized …`, `<Kind> in version "v1" cannot be handled as a …`); the
//!   decode error inside is prost's, not Go's, and names the message field (or the JSON
//!   path of a field whose content does not convert).
//!
//! Caveats: only the kinds the devcluster serves are known ([`decodes`]), and none of
//! them carries a `resource.Quantity` or an `IntOrString`, so neither is converted;
//! fields unknown to `k8s-pb` 0.9 are skipped without a warning (protobuf has no strict
//! decoding on the real server either); `contentEncoding` and `contentType` of the
//! envelope are ignored, as the real decoder ignores them.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::events::v1 as events;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value};

use super::registry::{ResourceType, Special};
use super::status::ApiError;

/// The media type of a Kubernetes protobuf body.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// What every Kubernetes protobuf body starts with.
const MAGIC: &[u8; 4] = b"k8s\0";

/// The group/version/kinds decoded here: every built-in kind the devcluster serves.
const KINDS: [(&str, &str, &str); 8] = [
    ("", "v1", "Namespace"),
    ("", "v1", "Secret"),
    ("", "v1", "ConfigMap"),
    ("", "v1", "ServiceAccount"),
    ("", "v1", "Event"),
    ("events.k8s.io", "v1", "Event"),
    ("coordination.k8s.io", "v1", "Lease"),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
];

/// Whether a protobuf body of this group/version/kind is decoded.
pub fn decodes(group: &str, version: &str, kind: &str) -> bool {
    KINDS.contains(&(group, version, kind))
}

/// A field whose content does not convert, named by its JSON path.
#[derive(Debug)]
struct FieldError {
    field: String,
    message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

type Converted = Result<Value, FieldError>;

/// The group/version/kind a body is decoded as: the envelope's, defaulted from the
/// request's resource type where the envelope leaves it out (the real decoder's
/// `copyKindDefaults`).
struct Gvk {
    group: String,
    version: String,
    kind: String,
}

impl Gvk {
    fn from_envelope(envelope: &Unknown, rt: &ResourceType) -> Self {
        let type_meta = envelope.type_meta.clone().unwrap_or_default();
        let api_version = type_meta.api_version.unwrap_or_default();
        let (mut group, mut version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version),
        };
        let mut kind = type_meta.kind.unwrap_or_default();
        if kind.is_empty() {
            kind = rt.kind.clone();
        }
        if version.is_empty() {
            group = rt.group.clone();
            version = rt.version.clone();
        }
        Self {
            group,
            version,
            kind,
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The real server's words for a body it cannot decode before it knows the kind.
fn unrecognized(rt: &ResourceType, error: impl fmt::Display, body: &[u8]) -> ApiError {
    let summary = if body.is_empty() {
        "<empty>".to_string()
    } else if body.len() > 30 {
        format!("{} ...", hex(&body[..30]))
    } else {
        hex(body)
    };
    ApiError::bad_request(format!(
        "the object provided is unrecognized (must be of type {}): {error} ({summary})",
        rt.kind
    ))
}

/// The real server's words for a body of a known kind that does not decode.
fn cannot_handle(gvk: &Gvk, rt: &ResourceType, error: impl fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version {:?} cannot be handled as a {}: {error}",
        gvk.kind, gvk.version, rt.kind
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a protobuf request body for a write to `rt` into the JSON object (with
/// `apiVersion` and `kind` from the envelope) that the JSON path would have parsed.
///
/// Custom resources have no protobuf form. The real kube-apiserver still negotiates the
/// media type for them (its CRD handler lists protobuf) and then fails to decode the
/// body, so they get its 400 BadRequest (`Object 'Kind' is missing in 'object has no
/// kind field '`), not a 415. That is its answer with `fieldValidation=Ignore`; with the
/// default Warn or Strict its CRD handler has no strict protobuf decoder and the request
/// ends in a server error, which is not imitated: the 400 is answered in every mode.
pub fn decode(rt: &ResourceType, body: &[u8]) -> Result<Value, ApiError> {
    let payload = match body {
        [] => return Err(unrecognized(rt, "empty data", body)),
        _ if !body.starts_with(MAGIC) => {
            return Err(unrecognized(
                rt,
                "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
                body,
            ));
        }
        _ if body.len() == MAGIC.len() => return Err(unrecognized(rt, "empty body", body)),
        _ => &body[MAGIC.len()..],
    };
    let envelope = Unknown::decode(payload).map_err(|e| unrecognized(rt, e, body))?;
    let gvk = Gvk::from_envelope(&envelope, rt);
    if rt.special == Special::Custom {
        return Err(cannot_handle(
            &gvk,
            rt,
            "Object 'Kind' is missing in 'object has no kind field '",
        ));
    }
    if !decodes(&gvk.group, &gvk.version, &gvk.kind) {
        return Err(cannot_handle(
            &gvk,
            rt,
            format!(
                "no kind {:?} is registered for version {:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                gvk.kind,
                gvk.api_version()
            ),
        ));
    }
    let raw = envelope.raw.as_deref().unwrap_or_default();
    let fields = to_json(&gvk, raw).map_err(|e| cannot_handle(&gvk, rt, e))?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(gvk.api_version()));
    object.insert("kind".into(), Value::String(gvk.kind.clone()));
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    Ok(Value::Object(object))
}

/// Why a message did not become JSON: it did not decode, or a field's content did not
/// convert.
enum ToJsonError {
    Decode(prost::DecodeError),
    Field(FieldError),
}

impl fmt::Display for ToJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Decode(e) => write!(f, "{e}"),
            Self::Field(e) => write!(f, "{e}"),
        }
    }
}

impl From<prost::DecodeError> for ToJsonError {
    fn from(e: prost::DecodeError) -> Self {
        Self::Decode(e)
    }
}

impl From<FieldError> for ToJsonError {
    fn from(e: FieldError) -> Self {
        Self::Field(e)
    }
}

/// The kind's message in `raw` as JSON (without apiVersion and kind).
fn to_json(gvk: &Gvk, raw: &[u8]) -> Result<Value, ToJsonError> {
    Ok(match (gvk.group.as_str(), gvk.kind.as_str()) {
        ("", "Namespace") => namespace(&core::Namespace::decode(raw)?)?,
        ("", "Secret") => secret(&core::Secret::decode(raw)?)?,
        ("", "ConfigMap") => config_map(&core::ConfigMap::decode(raw)?)?,
        ("", "ServiceAccount") => service_account(&core::ServiceAccount::decode(raw)?)?,
        ("", "Event") => core_event(&core::Event::decode(raw)?)?,
        ("events.k8s.io", "Event") => events_event(&events::Event::decode(raw)?)?,
        ("coordination.k8s.io", "Lease") => lease(&coordination::Lease::decode(raw)?)?,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            crd(&apiextensions::CustomResourceDefinition::decode(raw)?)?
        }
        _ => unreachable!("decode() checks the kind against KINDS first"),
    })
}

// ---------------------------------------------------------------------------
// Building JSON objects with Go's encoding/json rules
// ---------------------------------------------------------------------------

/// A JSON object built field by field, each helper named after the Go field shape it
/// marshals.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Self {
        Self::default()
    }

    fn put(mut self, key: &str, value: Value) -> Self {
        self.0.insert(key.into(), value);
        self
    }

    fn put_some(self, key: &str, value: Option<Value>) -> Self {
        match value {
            Some(value) => self.put(key, value),
            None => self,
        }
    }

    /// Go `string` with `omitempty`: left out when empty.
    fn str(self, key: &str, value: &Option<String>) -> Self {
        let value = value.as_deref().filter(|s| !s.is_empty());
        self.put_some(key, value.map(|s| Value::String(s.into())))
    }

    /// Go `string` without `omitempty`: always there, `""` when unset.
    fn str_always(self, key: &str, value: &Option<String>) -> Self {
        let value = value.clone().unwrap_or_default();
        self.put(key, Value::String(value))
    }

    /// Go `*string`: there when sent, even empty.
    fn str_ptr(self, key: &str, value: &Option<String>) -> Self {
        self.put_some(key, value.clone().map(Value::String))
    }

    /// Go integer with `omitempty`: left out when zero.
    fn int<T: Into<i64> + Copy>(self, key: &str, value: Option<T>) -> Self {
        let value = value.map(Into::into).filter(|v| *v != 0);
        self.put_some(key, value.map(Value::from))
    }

    /// Go integer without `omitempty`: always there, 0 when unset.
    fn int_always<T: Into<i64> + Copy>(self, key: &str, value: Option<T>) -> Self {
        self.put(key, Value::from(value.map(Into::into).unwrap_or(0)))
    }

    /// Go `*int32` / `*int64`: there when sent, even zero.
    fn int_ptr<T: Into<i64> + Copy>(self, key: &str, value: Option<T>) -> Self {
        self.put_some(key, value.map(|v| Value::from(v.into())))
    }

    /// Go `bool` with `omitempty`: there only when true.
    fn bool(self, key: &str, value: Option<bool>) -> Self {
        self.put_some(key, value.filter(|b| *b).map(Value::Bool))
    }

    /// Go `bool` without `omitempty`: always there.
    fn bool_always(self, key: &str, value: Option<bool>) -> Self {
        self.put(key, Value::Bool(value.unwrap_or(false)))
    }

    /// Go `*bool`: there when sent, even false.
    fn bool_ptr(self, key: &str, value: Option<bool>) -> Self {
        self.put_some(key, value.map(Value::Bool))
    }

    /// Go `*float64`: there when sent; whole numbers as JSON integers, as Go writes them.
    fn float_ptr(self, key: &str, value: Option<f64>) -> Self {
        self.put_some(key, value.map(go_float))
    }

    /// Go `[]string` with `omitempty`: left out when empty.
    fn strings(self, key: &str, values: &[String]) -> Self {
        if values.is_empty() {
            return self;
        }
        self.put(key, Value::from(values.to_vec()))
    }

    /// Go `[]string` without `omitempty`: `null` when empty (a nil slice).
    fn strings_always(self, key: &str, values: &[String]) -> Self {
        if values.is_empty() {
            return self.put(key, Value::Null);
        }
        self.put(key, Value::from(values.to_vec()))
    }

    /// Go slice of structs with `omitempty`: left out when empty.
    fn list(self, key: &str, values: Vec<Value>) -> Self {
        if values.is_empty() {
            return self;
        }
        self.put(key, Value::Array(values))
    }

    /// Go `map[string]string` with `omitempty`: left out when empty.
    fn string_map(self, key: &str, map: &BTreeMap<String, String>) -> Self {
        if map.is_empty() {
            return self;
        }
        let object = map
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        self.put(key, Value::Object(object))
    }

    /// Go `map[string][]byte` with `omitempty`: left out when empty, values in base64.
    fn bytes_map(self, key: &str, map: &BTreeMap<String, Vec<u8>>) -> Self {
        if map.is_empty() {
            return self;
        }
        let object = map
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(base64(v))))
            .collect();
        self.put(key, Value::Object(object))
    }

    /// Go `[]byte` with `omitempty`: left out when empty, else base64.
    fn bytes(self, key: &str, value: &Option<Vec<u8>>) -> Self {
        let value = value.as_deref().filter(|b| !b.is_empty());
        self.put_some(key, value.map(|b| Value::String(base64(b))))
    }

    /// Go `metav1.Time` (not a pointer): `null` when unset, as its MarshalJSON writes a
    /// zero time.
    fn time(self, key: &str, value: &Option<meta::Time>) -> Result<Self, FieldError> {
        let seconds = value.as_ref().map(|t| (t.seconds, t.nanos));
        Ok(self.put(key, time_json(key, seconds.unwrap_or_default(), false)?))
    }

    /// Go `*metav1.Time`: left out when not sent.
    fn time_ptr(self, key: &str, value: &Option<meta::Time>) -> Result<Self, FieldError> {
        match value {
            None => Ok(self),
            Some(t) => Ok(self.put(key, time_json(key, (t.seconds, t.nanos), false)?)),
        }
    }

    /// Go `metav1.MicroTime` (not a pointer): `null` when unset.
    fn micro_time(self, key: &str, value: &Option<meta::MicroTime>) -> Result<Self, FieldError> {
        let seconds = value.as_ref().map(|t| (t.seconds, t.nanos));
        Ok(self.put(key, time_json(key, seconds.unwrap_or_default(), true)?))
    }

    /// Go `*metav1.MicroTime`: left out when not sent.
    fn micro_time_ptr(
        self,
        key: &str,
        value: &Option<meta::MicroTime>,
    ) -> Result<Self, FieldError> {
        match value {
            None => Ok(self),
            Some(t) => Ok(self.put(key, time_json(key, (t.seconds, t.nanos), true)?)),
        }
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A float as Go's encoding/json writes it: whole numbers without a fraction.
fn go_float(value: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT {
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

/// A `metav1.Time` / `metav1.MicroTime` as JSON. An empty message (neither seconds nor
/// nanos sent) is Go's zero time, which marshals as `null`; anything else is a UTC RFC
/// 3339 time, truncated to seconds (Time) or microseconds (MicroTime).
fn time_json(
    field: &str,
    (seconds, nanos): (Option<i64>, Option<i32>),
    micro: bool,
) -> Result<Value, FieldError> {
    if seconds.is_none() && nanos.is_none() {
        return Ok(Value::Null);
    }
    let timestamp =
        jiff::Timestamp::new(seconds.unwrap_or(0), nanos.unwrap_or(0)).map_err(|e| FieldError {
            field: field.into(),
            message: format!("invalid time: {e}"),
        })?;
    let whole = timestamp.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(Value::String(if micro {
        format!("{whole}.{:06}Z", timestamp.subsec_microsecond())
    } else {
        format!("{whole}Z")
    }))
}

/// Raw JSON carried in a protobuf bytes field (`FieldsV1`, apiextensions `JSON`): the
/// value it holds, `null` when empty.
fn raw_json(field: &str, raw: &Option<Vec<u8>>) -> Converted {
    match raw.as_deref() {
        None | Some([]) => Ok(Value::Null),
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| FieldError {
            field: field.into(),
            message: format!("invalid JSON: {e}"),
        }),
    }
}

/// The errors of a field inside a list or map name the element.
fn at(field: &str, error: FieldError) -> FieldError {
    FieldError {
        field: format!("{field}{}", error.field_suffix()),
        message: error.message,
    }
}

impl FieldError {
    /// The path under the element, with its separator (`.x` or `[0]`), empty for the
    /// element itself.
    fn field_suffix(&self) -> String {
        match self.field.chars().next() {
            None | Some('.' | '[') => self.field.clone(),
            Some(_) => format!(".{}", self.field),
        }
    }
}

// ---------------------------------------------------------------------------
// meta/v1
// ---------------------------------------------------------------------------

fn object_meta(m: &Option<meta::ObjectMeta>) -> Converted {
    let m = m.clone().unwrap_or_default();
    let managed = m
        .managed_fields
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            managed_fields_entry(entry).map_err(|e| at(&format!("metadata.managedFields[{i}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Obj::new()
        .str("name", &m.name)
        .str("generateName", &m.generate_name)
        .str("namespace", &m.namespace)
        .str("selfLink", &m.self_link)
        .str("uid", &m.uid)
        .str("resourceVersion", &m.resource_version)
        .int("generation", m.generation)
        .time("creationTimestamp", &m.creation_timestamp)
        .map_err(|e| at("metadata", e))?
        .time_ptr("deletionTimestamp", &m.deletion_timestamp)
        .map_err(|e| at("metadata", e))?
        .int_ptr(
            "deletionGracePeriodSeconds",
            m.deletion_grace_period_seconds,
        )
        .string_map("labels", &m.labels)
        .string_map("annotations", &m.annotations)
        .list(
            "ownerReferences",
            m.owner_references.iter().map(owner_reference).collect(),
        )
        .strings("finalizers", &m.finalizers)
        .list("managedFields", managed)
        .done())
}

fn owner_reference(r: &meta::OwnerReference) -> Value {
    Obj::new()
        .str_always("apiVersion", &r.api_version)
        .str_always("kind", &r.kind)
        .str_always("name", &r.name)
        .str_always("uid", &r.uid)
        .bool_ptr("controller", r.controller)
        .bool_ptr("blockOwnerDeletion", r.block_owner_deletion)
        .done()
}

fn managed_fields_entry(e: &meta::ManagedFieldsEntry) -> Converted {
    let fields = match &e.fields_v1 {
        None => None,
        Some(f) => Some(raw_json("fieldsV1", &f.raw)?),
    };
    Ok(Obj::new()
        .str("manager", &e.manager)
        .str("operation", &e.operation)
        .str("apiVersion", &e.api_version)
        .time_ptr("time", &e.time)?
        .str("fieldsType", &e.fields_type)
        .put_some("fieldsV1", fields)
        .str("subresource", &e.subresource)
        .done())
}

// ---------------------------------------------------------------------------
// core/v1
// ---------------------------------------------------------------------------

fn namespace(n: &core::Namespace) -> Converted {
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    let conditions = status
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(Obj::new()
                .str_always("type", &c.r#type)
                .str_always("status", &c.status)
                .time("lastTransitionTime", &c.last_transition_time)
                .map_err(|e| at(&format!("status.conditions[{i}]"), e))?
                .str("reason", &c.reason)
                .str("message", &c.message)
                .done())
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    Ok(Obj::new()
        .put("metadata", object_meta(&n.metadata)?)
        .put(
            "spec",
            Obj::new().strings("finalizers", &spec.finalizers).done(),
        )
        .put(
            "status",
            Obj::new()
                .str("phase", &status.phase)
                .list("conditions", conditions)
                .done(),
        )
        .done())
}

fn secret(s: &core::Secret) -> Converted {
    Ok(Obj::new()
        .put("metadata", object_meta(&s.metadata)?)
        .bool_ptr("immutable", s.immutable)
        .bytes_map("data", &s.data)
        .string_map("stringData", &s.string_data)
        .str("type", &s.r#type)
        .done())
}

fn config_map(c: &core::ConfigMap) -> Converted {
    Ok(Obj::new()
        .put("metadata", object_meta(&c.metadata)?)
        .bool_ptr("immutable", c.immutable)
        .string_map("data", &c.data)
        .bytes_map("binaryData", &c.binary_data)
        .done())
}

fn service_account(s: &core::ServiceAccount) -> Converted {
    Ok(Obj::new()
        .put("metadata", object_meta(&s.metadata)?)
        .list("secrets", s.secrets.iter().map(object_reference).collect())
        .list(
            "imagePullSecrets",
            s.image_pull_secrets
                .iter()
                .map(|r| Obj::new().str("name", &r.name).done())
                .collect(),
        )
        .bool_ptr(
            "automountServiceAccountToken",
            s.automount_service_account_token,
        )
        .done())
}

fn object_reference(r: &core::ObjectReference) -> Value {
    Obj::new()
        .str("kind", &r.kind)
        .str("namespace", &r.namespace)
        .str("name", &r.name)
        .str("uid", &r.uid)
        .str("apiVersion", &r.api_version)
        .str("resourceVersion", &r.resource_version)
        .str("fieldPath", &r.field_path)
        .done()
}

fn event_source(s: &Option<core::EventSource>) -> Value {
    let s = s.clone().unwrap_or_default();
    Obj::new()
        .str("component", &s.component)
        .str("host", &s.host)
        .done()
}

fn core_event(e: &core::Event) -> Converted {
    let series = match &e.series {
        None => None,
        Some(s) => Some(
            Obj::new()
                .int("count", s.count)
                .micro_time("lastObservedTime", &s.last_observed_time)
                .map_err(|e| at("series", e))?
                .done(),
        ),
    };
    Ok(Obj::new()
        .put("metadata", object_meta(&e.metadata)?)
        .put(
            "involvedObject",
            object_reference(&e.involved_object.clone().unwrap_or_default()),
        )
        .str("reason", &e.reason)
        .str("message", &e.message)
        .put("source", event_source(&e.source))
        .time("firstTimestamp", &e.first_timestamp)?
        .time("lastTimestamp", &e.last_timestamp)?
        .int("count", e.count)
        .str("type", &e.r#type)
        .micro_time("eventTime", &e.event_time)?
        .put_some("series", series)
        .str("action", &e.action)
        .put_some("related", e.related.as_ref().map(object_reference))
        .str_always("reportingComponent", &e.reporting_component)
        .str_always("reportingInstance", &e.reporting_instance)
        .done())
}

// ---------------------------------------------------------------------------
// events.k8s.io/v1, coordination.k8s.io/v1
// ---------------------------------------------------------------------------

fn events_event(e: &events::Event) -> Converted {
    let series = match &e.series {
        None => None,
        Some(s) => Some(
            Obj::new()
                .int_always("count", s.count)
                .micro_time("lastObservedTime", &s.last_observed_time)
                .map_err(|e| at("series", e))?
                .done(),
        ),
    };
    Ok(Obj::new()
        .put("metadata", object_meta(&e.metadata)?)
        .micro_time("eventTime", &e.event_time)?
        .put_some("series", series)
        .str("reportingController", &e.reporting_controller)
        .str("reportingInstance", &e.reporting_instance)
        .str("action", &e.action)
        .str("reason", &e.reason)
        .put(
            "regarding",
            object_reference(&e.regarding.clone().unwrap_or_default()),
        )
        .put_some("related", e.related.as_ref().map(object_reference))
        .str("note", &e.note)
        .str("type", &e.r#type)
        .put("deprecatedSource", event_source(&e.deprecated_source))
        .time("deprecatedFirstTimestamp", &e.deprecated_first_timestamp)?
        .time("deprecatedLastTimestamp", &e.deprecated_last_timestamp)?
        .int("deprecatedCount", e.deprecated_count)
        .done())
}

fn lease(l: &coordination::Lease) -> Converted {
    let spec = l.spec.clone().unwrap_or_default();
    let spec = Obj::new()
        .str_ptr("holderIdentity", &spec.holder_identity)
        .int_ptr("leaseDurationSeconds", spec.lease_duration_seconds)
        .micro_time_ptr("acquireTime", &spec.acquire_time)
        .and_then(|o| o.micro_time_ptr("renewTime", &spec.renew_time))
        .map_err(|e| at("spec", e))?
        .int_ptr("leaseTransitions", spec.lease_transitions)
        .str_ptr("strategy", &spec.strategy)
        .str_ptr("preferredHolder", &spec.preferred_holder)
        .done();
    Ok(Obj::new()
        .put("metadata", object_meta(&l.metadata)?)
        .put("spec", spec)
        .done())
}

// ---------------------------------------------------------------------------
// apiextensions.k8s.io/v1
// ---------------------------------------------------------------------------

fn crd(c: &apiextensions::CustomResourceDefinition) -> Converted {
    let spec = c.spec.clone().unwrap_or_default();
    let status = c.status.clone().unwrap_or_default();
    let versions = spec
        .versions
        .iter()
        .enumerate()
        .map(|(i, v)| crd_version(v).map_err(|e| at(&format!("spec.versions[{i}]"), e)))
        .collect::<Result<Vec<_>, _>>()?;
    let spec_json = Obj::new()
        .str_always("group", &spec.group)
        .put("names", crd_names(&spec.names))
        .str_always("scope", &spec.scope)
        .put(
            "versions",
            if versions.is_empty() {
                Value::Null
            } else {
                Value::Array(versions)
            },
        )
        .put_some("conversion", spec.conversion.as_ref().map(crd_conversion))
        .bool("preserveUnknownFields", spec.preserve_unknown_fields)
        .done();
    let conditions = status
        .conditions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(Obj::new()
                .str_always("type", &c.r#type)
                .str_always("status", &c.status)
                .time("lastTransitionTime", &c.last_transition_time)
                .map_err(|e| at(&format!("status.conditions[{i}]"), e))?
                .str("reason", &c.reason)
                .str("message", &c.message)
                .int("observedGeneration", c.observed_generation)
                .done())
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    let status_json = Obj::new()
        .list("conditions", conditions)
        .put("acceptedNames", crd_names(&status.accepted_names))
        .strings_always("storedVersions", &status.stored_versions)
        .int("observedGeneration", status.observed_generation)
        .done();
    Ok(Obj::new()
        .put("metadata", object_meta(&c.metadata)?)
        .put("spec", spec_json)
        .put("status", status_json)
        .done())
}

fn crd_names(n: &Option<apiextensions::CustomResourceDefinitionNames>) -> Value {
    let n = n.clone().unwrap_or_default();
    Obj::new()
        .str_always("plural", &n.plural)
        .str("singular", &n.singular)
        .strings("shortNames", &n.short_names)
        .str_always("kind", &n.kind)
        .str("listKind", &n.list_kind)
        .strings("categories", &n.categories)
        .done()
}

fn crd_conversion(c: &apiextensions::CustomResourceConversion) -> Value {
    let webhook = c.webhook.as_ref().map(|w| {
        let client_config = w.client_config.as_ref().map(|cc| {
            let service = cc.service.as_ref().map(|s| {
                Obj::new()
                    .str_always("namespace", &s.namespace)
                    .str_always("name", &s.name)
                    .str_ptr("path", &s.path)
                    .int_ptr("port", s.port)
                    .done()
            });
            Obj::new()
                .str_ptr("url", &cc.url)
                .put_some("service", service)
                .bytes("caBundle", &cc.ca_bundle)
                .done()
        });
        Obj::new()
            .put_some("clientConfig", client_config)
            .strings_always("conversionReviewVersions", &w.conversion_review_versions)
            .done()
    });
    Obj::new()
        .str_always("strategy", &c.strategy)
        .put_some("webhook", webhook)
        .done()
}

fn crd_version(v: &apiextensions::CustomResourceDefinitionVersion) -> Converted {
    let schema = match &v.schema {
        None => None,
        Some(validation) => {
            let props = match &validation.open_apiv3_schema {
                None => None,
                Some(p) => Some(schema_props(p).map_err(|e| at("schema.openAPIV3Schema", e))?),
            };
            Some(Obj::new().put_some("openAPIV3Schema", props).done())
        }
    };
    let subresources = v.subresources.as_ref().map(|s| {
        let scale = s.scale.as_ref().map(|scale| {
            Obj::new()
                .str_always("specReplicasPath", &scale.spec_replicas_path)
                .str_always("statusReplicasPath", &scale.status_replicas_path)
                .str_ptr("labelSelectorPath", &scale.label_selector_path)
                .done()
        });
        Obj::new()
            .put_some("status", s.status.as_ref().map(|_| Obj::new().done()))
            .put_some("scale", scale)
            .done()
    });
    let columns = v
        .additional_printer_columns
        .iter()
        .map(|c| {
            Obj::new()
                .str_always("name", &c.name)
                .str_always("type", &c.r#type)
                .str("format", &c.format)
                .str("description", &c.description)
                .int("priority", c.priority)
                .str_always("jsonPath", &c.json_path)
                .done()
        })
        .collect();
    let selectable = v
        .selectable_fields
        .iter()
        .map(|f| Obj::new().str_always("jsonPath", &f.json_path).done())
        .collect();
    Ok(Obj::new()
        .str_always("name", &v.name)
        .bool_always("served", v.served)
        .bool_always("storage", v.storage)
        .bool("deprecated", v.deprecated)
        .str_ptr("deprecationWarning", &v.deprecation_warning)
        .put_some("schema", schema)
        .put_some("subresources", subresources)
        .list("additionalPrinterColumns", columns)
        .list("selectableFields", selectable)
        .done())
}

/// Schemas by name (`properties`, `patternProperties`, `definitions`), each converted
/// with its name in error paths.
fn schema_map(
    field: &str,
    map: &BTreeMap<String, apiextensions::JsonSchemaProps>,
) -> Result<Option<Value>, FieldError> {
    if map.is_empty() {
        return Ok(None);
    }
    let mut out = Map::new();
    for (name, props) in map {
        let value = schema_props(props).map_err(|e| at(&format!("{field}[{name:?}]"), e))?;
        out.insert(name.clone(), value);
    }
    Ok(Some(Value::Object(out)))
}

/// A list of schemas (`allOf`, `oneOf`, `anyOf`, an `items` array).
fn schema_list(
    field: &str,
    list: &[apiextensions::JsonSchemaProps],
) -> Result<Vec<Value>, FieldError> {
    list.iter()
        .enumerate()
        .map(|(i, p)| schema_props(p).map_err(|e| at(&format!("{field}[{i}]"), e)))
        .collect()
}

/// `JSONSchemaPropsOrBool` as its MarshalJSON writes it: the schema, else the boolean.
fn schema_or_bool(field: &str, value: &apiextensions::JsonSchemaPropsOrBool) -> Converted {
    match &value.schema {
        Some(schema) => schema_props(schema).map_err(|e| at(field, e)),
        None => Ok(Value::Bool(value.allows.unwrap_or(false))),
    }
}

/// `JSONSchemaProps` as its Go JSON tags write it (every field `omitempty`).
fn schema_props(p: &apiextensions::JsonSchemaProps) -> Converted {
    let items = match &p.items {
        None => None,
        Some(items) if !items.j_son_schemas.is_empty() => {
            Some(Value::Array(schema_list("items", &items.j_son_schemas)?))
        }
        Some(items) => Some(match &items.schema {
            Some(schema) => schema_props(schema).map_err(|e| at("items", e))?,
            None => Value::Null,
        }),
    };
    let not = match &p.not {
        None => None,
        Some(not) => Some(schema_props(not).map_err(|e| at("not", e))?),
    };
    let additional_properties = match &p.additional_properties {
        None => None,
        Some(a) => Some(schema_or_bool("additionalProperties", a)?),
    };
    let additional_items = match &p.additional_items {
        None => None,
        Some(a) => Some(schema_or_bool("additionalItems", a)?),
    };
    let dependencies = if p.dependencies.is_empty() {
        None
    } else {
        let mut out = Map::new();
        for (name, dependency) in &p.dependencies {
            let value = if !dependency.property.is_empty() {
                Value::from(dependency.property.clone())
            } else if let Some(schema) = &dependency.schema {
                schema_props(schema).map_err(|e| at(&format!("dependencies[{name:?}]"), e))?
            } else {
                Value::Null
            };
            out.insert(name.clone(), value);
        }
        Some(Value::Object(out))
    };
    let enumeration = p
        .r#enum
        .iter()
        .enumerate()
        .map(|(i, e)| raw_json(&format!("enum[{i}]"), &e.raw))
        .collect::<Result<Vec<_>, _>>()?;
    let default = match &p.default {
        None => None,
        Some(d) => Some(raw_json("default", &d.raw)?),
    };
    let example = match &p.example {
        None => None,
        Some(e) => Some(raw_json("example", &e.raw)?),
    };
    let validations = p
        .x_kubernetes_validations
        .iter()
        .map(|r| {
            Obj::new()
                .str_always("rule", &r.rule)
                .str("message", &r.message)
                .str("messageExpression", &r.message_expression)
                .str_ptr("reason", &r.reason)
                .str("fieldPath", &r.field_path)
                .bool_ptr("optionalOldSelf", r.optional_old_self)
                .done()
        })
        .collect();
    let external_docs = p.external_docs.as_ref().map(|d| {
        Obj::new()
            .str("description", &d.description)
            .str("url", &d.url)
            .done()
    });
    Ok(Obj::new()
        .str("id", &p.id)
        .str("$schema", &p.schema)
        .str_ptr("$ref", &p.r#ref)
        .str("description", &p.description)
        .str("type", &p.r#type)
        .str("format", &p.format)
        .str("title", &p.title)
        .put_some("default", default)
        .float_ptr("maximum", p.maximum)
        .bool("exclusiveMaximum", p.exclusive_maximum)
        .float_ptr("minimum", p.minimum)
        .bool("exclusiveMinimum", p.exclusive_minimum)
        .int_ptr("maxLength", p.max_length)
        .int_ptr("minLength", p.min_length)
        .str("pattern", &p.pattern)
        .int_ptr("maxItems", p.max_items)
        .int_ptr("minItems", p.min_items)
        .bool("uniqueItems", p.unique_items)
        .float_ptr("multipleOf", p.multiple_of)
        .list("enum", enumeration)
        .int_ptr("maxProperties", p.max_properties)
        .int_ptr("minProperties", p.min_properties)
        .strings("required", &p.required)
        .put_some("items", items)
        .list("allOf", schema_list("allOf", &p.all_of)?)
        .list("oneOf", schema_list("oneOf", &p.one_of)?)
        .list("anyOf", schema_list("anyOf", &p.any_of)?)
        .put_some("not", not)
        .put_some("properties", schema_map("properties", &p.properties)?)
        .put_some("additionalProperties", additional_properties)
        .put_some(
            "patternProperties",
            schema_map("patternProperties", &p.pattern_properties)?,
        )
        .put_some("dependencies", dependencies)
        .put_some("additionalItems", additional_items)
        .put_some("definitions", schema_map("definitions", &p.definitions)?)
        .put_some("externalDocs", external_docs)
        .put_some("example", example)
        .bool("nullable", p.nullable)
        .bool_ptr(
            "x-kubernetes-preserve-unknown-fields",
            p.x_kubernetes_preserve_unknown_fields,
        )
        .bool(
            "x-kubernetes-embedded-resource",
            p.x_kubernetes_embedded_resource,
        )
        .bool("x-kubernetes-int-or-string", p.x_kubernetes_int_or_string)
        .strings("x-kubernetes-list-map-keys", &p.x_kubernetes_list_map_keys)
        .str_ptr("x-kubernetes-list-type", &p.x_kubernetes_list_type)
        .str_ptr("x-kubernetes-map-type", &p.x_kubernetes_map_type)
        .list("x-kubernetes-validations", validations)
        .done())
}

#[cfg(test)]
mod tests {
    //! Decoding is checked against real bodies, not bytes made by the code under test:
    //! `tests/fixtures/protobuf/*.kubectl.pb` are kubectl's own requests (captured on the
    //! wire) and `*.protoc.pb` were encoded by Google's `protoc` from Kubernetes'
    //! `generated.proto` files, for the kinds kubectl never sends as protobuf (see the
    //! README there). kubectl's bodies are compared with kubectl's own JSON of the same
    //! object (`--dry-run=client -o json`), the others with the JSON Go writes.

    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::registry::Registry;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/protobuf/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn builtin(group: &str, plural: &str) -> Arc<ResourceType> {
        Registry::with_builtins()
            .get(group, "v1", plural)
            .unwrap_or_else(|| panic!("{plural}.{group} is served"))
    }

    /// The served built-in kinds and the fixture each is checked with.
    const FIXTURES: [(&str, &str, &str); 8] = [
        ("", "namespaces", "namespace.kubectl.pb"),
        ("", "secrets", "secret-generic.kubectl.pb"),
        ("", "configmaps", "configmap.kubectl.pb"),
        ("", "serviceaccounts", "serviceaccount.kubectl.pb"),
        ("", "events", "event-core.protoc.pb"),
        ("events.k8s.io", "events", "event-events-v1.protoc.pb"),
        ("coordination.k8s.io", "leases", "lease.protoc.pb"),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "crd.protoc.pb",
        ),
    ];

    #[test]
    fn every_served_builtin_kind_decodes_and_has_a_fixture() {
        let registry = Registry::with_builtins();
        let mut served = 0;
        for rt in registry.all() {
            served += 1;
            assert!(
                decodes(&rt.group, &rt.version, &rt.kind),
                "{} is served but not decoded",
                rt.kind_qualified()
            );
            let (_, _, file) = FIXTURES
                .iter()
                .find(|(g, p, _)| *g == rt.group && *p == rt.plural)
                .unwrap_or_else(|| panic!("no fixture for {}", rt.qualified()));
            let object = decode(rt, &fixture(file)).unwrap();
            assert_eq!(object["apiVersion"], rt.api_version().as_str(), "{file}");
            assert_eq!(object["kind"], rt.kind.as_str(), "{file}");
        }
        assert_eq!(served, KINDS.len(), "every decoded kind is served");
    }

    #[test]
    fn kubectl_bodies_decode_to_the_json_kubectl_would_have_sent() {
        for (plural, name) in [
            ("namespaces", "namespace"),
            ("secrets", "secret-generic"),
            ("secrets", "secret-from-file"),
            ("secrets", "secret-docker-registry"),
            ("configmaps", "configmap"),
            ("serviceaccounts", "serviceaccount"),
        ] {
            let decoded = decode(
                &builtin("", plural),
                &fixture(&format!("{name}.kubectl.pb")),
            )
            .unwrap_or_else(|e| panic!("{name}: {}", e.message));
            let expected: Value =
                serde_json::from_slice(&fixture(&format!("{name}.kubectl.json"))).unwrap();
            assert_eq!(decoded, expected, "{name}");
        }
    }

    #[test]
    fn secret_bytes_become_base64_and_binary_configmap_data_binary_data() {
        let secret = decode(
            &builtin("", "secrets"),
            &fixture("secret-generic.kubectl.pb"),
        )
        .unwrap();
        assert_eq!(secret["data"]["password"], base64(b"S3cr3t!pw"));
        assert!(secret.get("type").is_none(), "Go leaves an empty type out");
        let config = decode(&builtin("", "configmaps"), &fixture("configmap.kubectl.pb")).unwrap();
        assert_eq!(config["data"]["settings.txt"], "line one\nline two\n");
        assert_eq!(
            config["binaryData"]["blob.bin"],
            base64(b"\x00\x01\x02\xff\xfe binary")
        );
    }

    #[test]
    fn core_event_keeps_go_zero_values_where_go_writes_them() {
        let event = decode(&builtin("", "events"), &fixture("event-core.protoc.pb")).unwrap();
        assert_eq!(
            event,
            json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": "clinic-net.1881f0c2a5b3d4e5",
                    "namespace": "clinic",
                    "creationTimestamp": null
                },
                "involvedObject": {
                    "kind": "HipaaNetwork",
                    "namespace": "clinic",
                    "name": "clinic-net",
                    "uid": "6a1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                    "apiVersion": "hipaa.dev/v1alpha1",
                    "resourceVersion": "42"
                },
                "reason": "DriftDetected",
                "message": "security group sg-0a1b opens port 22 to 0.0.0.0/0",
                "source": {"component": "hipaa-operator"},
                "firstTimestamp": "2026-01-01T00:00:00Z",
                "lastTimestamp": "2026-01-01T00:01:00Z",
                "count": 2,
                "type": "Warning",
                "eventTime": null,
                "reportingComponent": "hipaa-operator",
                "reportingInstance": "hipaa-operator-7c9d5-xk2lp"
            })
        );
    }

    #[test]
    fn events_v1_event_has_micro_times_and_its_series() {
        let event = decode(
            &builtin("events.k8s.io", "events"),
            &fixture("event-events-v1.protoc.pb"),
        )
        .unwrap();
        assert_eq!(
            event,
            json!({
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {
                    "name": "clinic-net.1881f0c2a5b3d4e6",
                    "namespace": "clinic",
                    "creationTimestamp": null
                },
                "eventTime": "2026-01-01T00:00:00.123456Z",
                "series": {"count": 3, "lastObservedTime": "2026-01-01T00:02:00.000005Z"},
                "reportingController": "hipaa.dev/operator",
                "reportingInstance": "hipaa-operator-7c9d5-xk2lp",
                "action": "Remediate",
                "reason": "DriftRemediated",
                "regarding": {
                    "kind": "HipaaNetwork",
                    "namespace": "clinic",
                    "name": "clinic-net",
                    "uid": "6a1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                    "apiVersion": "hipaa.dev/v1alpha1"
                },
                "note": "removed the ingress rule 0.0.0.0/0:22 from sg-0a1b",
                "type": "Normal",
                "deprecatedSource": {},
                "deprecatedFirstTimestamp": null,
                "deprecatedLastTimestamp": null
            })
        );
    }

    #[test]
    fn lease_keeps_pointer_fields_that_were_sent_even_when_zero() {
        let lease = decode(
            &builtin("coordination.k8s.io", "leases"),
            &fixture("lease.protoc.pb"),
        )
        .unwrap();
        assert_eq!(
            lease,
            json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": "hipaa-operator",
                    "namespace": "hipaa-system",
                    "creationTimestamp": null
                },
                "spec": {
                    "holderIdentity": "hipaa-operator-7c9d5-xk2lp",
                    "leaseDurationSeconds": 15,
                    "acquireTime": "2026-01-01T00:00:00.250000Z",
                    "renewTime": "2026-01-01T00:00:10.999999Z",
                    "leaseTransitions": 0
                }
            })
        );
    }

    #[test]
    fn crd_schema_converts_with_go_json_rules() {
        let crd = decode(
            &builtin("apiextensions.k8s.io", "customresourcedefinitions"),
            &fixture("crd.protoc.pb"),
        )
        .unwrap();
        assert_eq!(
            crd,
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {
                    "name": "widgets.example.com",
                    "creationTimestamp": null,
                    "labels": {"app.kubernetes.io/part-of": "examples"}
                },
                "spec": {
                    "group": "example.com",
                    "names": {
                        "plural": "widgets",
                        "singular": "widget",
                        "shortNames": ["wd"],
                        "kind": "Widget",
                        "listKind": "WidgetList",
                        "categories": ["all"]
                    },
                    "scope": "Namespaced",
                    "versions": [{
                        "name": "v1",
                        "served": true,
                        "storage": true,
                        "schema": {"openAPIV3Schema": {
                            "description": "A widget.",
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "maximum": 10, "minimum": 1, "default": 3},
                                        "ratio": {"type": "number", "multipleOf": 0.25, "maximum": 1.5},
                                        "color": {"type": "string", "enum": ["red", "green"], "maxLength": 16, "minLength": 0},
                                        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                        "tags": {"type": "object", "additionalProperties": {"type": "string"}, "x-kubernetes-map-type": "granular"},
                                        "items": {
                                            "type": "array",
                                            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                            "x-kubernetes-list-type": "atomic",
                                            "maxItems": 5
                                        }
                                    },
                                    "x-kubernetes-validations": [{
                                        "rule": "self.size >= 1",
                                        "message": "size is at least 1",
                                        "reason": "FieldValueInvalid",
                                        "fieldPath": ".size"
                                    }]
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": true,
                                    "example": {"ready": true}
                                }
                            }
                        }},
                        "subresources": {"status": {}},
                        "additionalPrinterColumns": [{
                            "name": "Size",
                            "type": "integer",
                            "description": "How big.",
                            "jsonPath": ".spec.size"
                        }]
                    }]
                },
                "status": {
                    "acceptedNames": {"plural": "", "kind": ""},
                    "storedVersions": null
                }
            })
        );
    }

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: None,
            content_type: None,
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    fn error(rt: &ResourceType, body: &[u8]) -> (u16, String) {
        let e = decode(rt, body).expect_err("refused");
        (e.code, e.message)
    }

    #[test]
    fn bodies_that_are_not_protobuf_get_the_real_servers_400() {
        let rt = builtin("", "configmaps");
        assert_eq!(
            error(&rt, b""),
            (
                400,
                "the object provided is unrecognized (must be of type ConfigMap): empty data (<empty>)"
                    .into()
            )
        );
        assert_eq!(
            error(&rt, b"k8s\0"),
            (
                400,
                "the object provided is unrecognized (must be of type ConfigMap): empty body (6b387300)"
                    .into()
            )
        );
        let (code, message) = error(&rt, br#"{"kind":"ConfigMap"}"#);
        assert_eq!(code, 400);
        assert!(
            message.contains(
                "does not appear to be a protobuf message, expected prefix [107 56 115 0]"
            ),
            "{message}"
        );
        let mut truncated = fixture("configmap.kubectl.pb");
        truncated.truncate(40);
        let (code, message) = error(&rt, &truncated);
        assert_eq!(code, 400);
        assert!(
            message.starts_with("the object provided is unrecognized (must be of type ConfigMap): failed to decode Protobuf message"),
            "{message}"
        );
    }

    #[test]
    fn a_message_that_does_not_decode_names_the_field() {
        // A Secret whose metadata.name is not UTF-8.
        let raw = [0x0a, 0x04, 0x0a, 0x02, 0xff, 0xfe];
        let (code, message) = error(
            &builtin("", "secrets"),
            &envelope("v1", "Secret", raw.to_vec()),
        );
        assert_eq!(code, 400);
        assert!(
            message.starts_with("Secret in version \"v1\" cannot be handled as a Secret: "),
            "{message}"
        );
        assert!(message.contains("ObjectMeta.name"), "{message}");

        let secret = core::Secret {
            metadata: Some(meta::ObjectMeta {
                name: Some("s".into()),
                managed_fields: vec![meta::ManagedFieldsEntry {
                    manager: Some("m".into()),
                    fields_v1: Some(meta::FieldsV1 {
                        raw: Some(b"{not json".to_vec()),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let (_, message) = error(
            &builtin("", "secrets"),
            &envelope("v1", "Secret", secret.encode_to_vec()),
        );
        assert!(
            message.contains("metadata.managedFields[0].fieldsV1: invalid JSON"),
            "{message}"
        );
    }

    #[test]
    fn kinds_and_resources_that_have_no_protobuf_form_are_refused_as_the_real_server_does() {
        let (code, message) = error(&builtin("", "secrets"), &envelope("v1", "Pod", Vec::new()));
        assert_eq!(code, 400);
        assert_eq!(
            message,
            "Pod in version \"v1\" cannot be handled as a Secret: no kind \"Pod\" is registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        );

        let mut registry = Registry::with_builtins();
        registry
            .register_crd(&json!({
                "metadata": {"name": "widgets.example.com"},
                "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
            }))
            .unwrap();
        let widgets = registry.get("example.com", "v1", "widgets").unwrap();
        let (code, message) = error(&widgets, &envelope("example.com/v1", "Widget", Vec::new()));
        assert_eq!(code, 400);
        assert_eq!(
            message,
            "Widget in version \"v1\" cannot be handled as a Widget: Object 'Kind' is missing in 'object has no kind field '"
        );
    }

    #[test]
    fn the_request_kind_fills_in_what_the_envelope_leaves_out() {
        let body = fixture("serviceaccount.kubectl.pb");
        let decoded = decode(&builtin("", "serviceaccounts"), &body).unwrap();
        let mut envelope_less = MAGIC.to_vec();
        envelope_less.extend(
            Unknown {
                raw: Some(
                    core::ServiceAccount {
                        metadata: Some(meta::ObjectMeta {
                            name: Some("builder".into()),
                            namespace: Some("clinic".into()),
                            creation_timestamp: Some(meta::Time::default()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                ),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        assert_eq!(
            decode(&builtin("", "serviceaccounts"), &envelope_less).unwrap(),
            decoded
        );
    }
}
