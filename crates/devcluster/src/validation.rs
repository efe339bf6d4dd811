//! Validation of an object against a CRD's OpenAPI v3 schema, in the order the
//! Kubernetes API server applies it: defaults, then the structural schema (types,
//! required, enum, pattern, bounds), then the `x-kubernetes-validations` CEL rules
//! (transition rules see the old object on update). Unknown fields are reported the
//! way `fieldValidation=Strict` reports them.
//!
//! The checks themselves are done by real validators: `jsonschema` for the structural
//! part and `kube-cel` (Kubernetes' CEL libraries) for the rules. This module only
//! translates OpenAPI's `nullable` into JSON Schema and words the errors like the API
//! server (`spec.region: Invalid value: "x": ...`), so a user sees one message naming the
//! field and the rule, whoever validated it.

use std::fmt;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// Why a field was refused, in the API server's vocabulary (`field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    /// `Required value`: a required field is missing.
    Required,
    /// `Invalid value`: the value breaks a pattern, bound, type or CEL rule.
    Invalid,
    /// `Unsupported value`: not one of the enum's values.
    Unsupported,
    /// `Too long`: a string over `maxLength`.
    TooLong,
    /// `Too many`: a list or map over `maxItems`/`maxProperties`.
    TooMany,
    /// `Forbidden`: a field the schema does not declare (strict field validation).
    Forbidden,
}

/// One refused field. Displays like the API server: `spec.region: Invalid value: "us": ...`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// Path of the field, e.g. `spec.bastion.allowedCidrs[0]`.
    pub field: String,
    pub kind: FieldErrorType,
    /// The offending value, when the error has one.
    pub value: Option<Value>,
    /// The rule that was broken: the CEL rule's message, or the schema bound.
    pub detail: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value.as_ref().map(render_value);
        match (self.kind, value) {
            (FieldErrorType::Required, _) => write!(f, "{}: Required value", self.field),
            (FieldErrorType::Forbidden, _) => {
                write!(f, "{}: Forbidden: {}", self.field, self.detail)
            }
            (FieldErrorType::TooLong, _) => write!(f, "{}: Too long: {}", self.field, self.detail),
            (FieldErrorType::TooMany, Some(v)) => {
                write!(f, "{}: Too many: {}: {}", self.field, v, self.detail)
            }
            (FieldErrorType::Unsupported, Some(v)) => {
                write!(
                    f,
                    "{}: Unsupported value: {}: {}",
                    self.field, v, self.detail
                )
            }
            (FieldErrorType::Invalid, Some(v)) => {
                write!(f, "{}: Invalid value: {}: {}", self.field, v, self.detail)
            }
            (_, None) if self.field.is_empty() => write!(f, "{}", self.detail),
            (_, None) => write!(f, "{}: {}", self.field, self.detail),
        }
    }
}

/// The errors of one refused object; never empty.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid(pub Vec<FieldError>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

impl std::error::Error for Invalid {}

/// A compiled validator for one version of one CRD.
pub struct SchemaValidator {
    schema: Value,
    structural: jsonschema::Validator,
    rules: kube_cel::CompiledSchema,
    cel: kube_cel::Validator,
}

impl fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaValidator").finish_non_exhaustive()
    }
}

/// The CRD has no schema for the requested version, or its schema does not compile.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("CRD {crd} has no openAPIV3Schema for version {version}")]
    MissingSchema { crd: String, version: String },
    #[error("CRD {crd} schema does not compile: {message}")]
    Compile { crd: String, message: String },
}

impl SchemaValidator {
    /// Compiles the schema of `version` of `crd`.
    pub fn for_crd(crd: &CustomResourceDefinition, version: &str) -> Result<Self, SchemaError> {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let schema = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == version)
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .ok_or_else(|| SchemaError::MissingSchema {
                crd: name.clone(),
                version: version.to_string(),
            })?;
        let schema = serde_json::to_value(schema).map_err(|e| SchemaError::Compile {
            crd: name.clone(),
            message: e.to_string(),
        })?;
        Self::new(&name, schema)
    }

    /// Compiles an OpenAPI v3 schema (the `openAPIV3Schema` of a CRD version).
    pub fn new(name: &str, schema: Value) -> Result<Self, SchemaError> {
        let json_schema = nullable_to_json_schema(&schema);
        let structural = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .build(&json_schema)
            .map_err(|e| SchemaError::Compile {
                crd: name.to_string(),
                message: e.to_string(),
            })?;
        let rules = kube_cel::compile_schema(&schema);
        if let Some(err) = rules.compilation_errors().into_iter().next() {
            return Err(SchemaError::Compile {
                crd: name.to_string(),
                message: format!("{err:?}"),
            });
        }
        Ok(Self {
            schema,
            structural,
            rules,
            cel: kube_cel::Validator::new(),
        })
    }

    /// The OpenAPI v3 schema this validator checks against.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Applies the schema's defaults to `object` and validates the result; `old` is the
    /// stored object on update (transition rules compare against it). Returns the defaulted
    /// object, or every refused field.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Result<Value, Invalid> {
        let defaulted = kube_cel::apply_defaults(&self.schema, object);
        let mut errors: Vec<FieldError> = self
            .structural
            .iter_errors(&defaulted)
            .map(|e| structural_error(&e))
            .collect();
        // CEL rules assume the structural schema holds (types, required fields), as the
        // API server's do; evaluating them on a mistyped object only adds noise.
        if errors.is_empty()
            && let Err(failures) = self.cel.validate_compiled(&self.rules, &defaulted, old)
        {
            errors.extend(
                failures
                    .iter()
                    .map(|failure| cel_error(failure, &defaulted)),
            );
        }
        if errors.is_empty() {
            Ok(defaulted)
        } else {
            Err(Invalid(errors))
        }
    }

    /// Fields of `object` the schema does not declare (what the API server prunes, or
    /// refuses under `fieldValidation=Strict`). `metadata` is the API server's, not the
    /// schema's, and is not inspected.
    pub fn unknown_fields(&self, object: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Value::Object(map) = object {
            for (key, value) in map {
                if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match self.schema.get("properties").and_then(|p| p.get(key)) {
                    Some(sub) => collect_unknown(sub, value, key.clone(), &mut out),
                    None => out.push(key.clone()),
                }
            }
        }
        out
    }
}

impl SchemaValidator {
    /// Removes the fields [`unknown_fields`](Self::unknown_fields) lists, as the API
    /// server prunes them before storing.
    pub fn prune(&self, object: &mut Value) {
        if let Value::Object(map) = object {
            map.retain(|key, _| {
                matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                    || self
                        .schema
                        .get("properties")
                        .and_then(|p| p.get(key))
                        .is_some()
            });
            for (key, value) in map.iter_mut() {
                if let Some(sub) = self.schema.get("properties").and_then(|p| p.get(key))
                    && key != "metadata"
                {
                    prune_unknown(sub, value);
                }
            }
        }
    }
}

fn prune_unknown(schema: &Value, value: &mut Value) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties");
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            map.retain(|key, _| {
                properties.and_then(|p| p.get(key)).is_some() || additional.is_some()
            });
            for (key, child) in map.iter_mut() {
                if let Some(sub) = properties.and_then(|p| p.get(key)).or(additional) {
                    prune_unknown(sub, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items
                    .iter_mut()
                    .for_each(|item| prune_unknown(item_schema, item));
            }
        }
        _ => {}
    }
}

fn collect_unknown(schema: &Value, value: &Value, path: String, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties");
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(sub), _) | (None, Some(sub)) => {
                        collect_unknown(sub, child, child_path, out)
                    }
                    (None, None) => out.push(child_path),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    collect_unknown(item_schema, item, format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// OpenAPI 3.0's `nullable: true` is `type: [T, "null"]` in JSON Schema.
fn nullable_to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in map {
                // Vendor extensions hold Kubernetes' own data (CEL rules, list types),
                // and `default` is data, not schema: copy them verbatim.
                if key.starts_with("x-") || key == "default" || key == "enum" {
                    out.insert(key.clone(), value.clone());
                } else {
                    out.insert(key.clone(), nullable_to_json_schema(value));
                }
            }
            if map.get("nullable") == Some(&Value::Bool(true))
                && let Some(Value::String(ty)) = map.get("type")
            {
                out.insert("type".into(), serde_json::json!([ty, "null"]));
            }
            out.remove("nullable");
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(nullable_to_json_schema).collect()),
        other => other.clone(),
    }
}

/// `/spec/availabilityZones/0` -> `spec.availabilityZones[0]`.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.chars().all(|c| c.is_ascii_digit()) && !segment.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

fn structural_error(error: &jsonschema::ValidationError<'_>) -> FieldError {
    use jsonschema::error::ValidationErrorKind as Kind;
    let path = field_path(error.instance_path().as_str());
    let instance = error.instance().clone().into_owned();
    let invalid = |detail: String| FieldError {
        field: path.clone(),
        kind: FieldErrorType::Invalid,
        value: Some(instance.clone()),
        detail,
    };
    match error.kind() {
        Kind::Required { property } => FieldError {
            field: join(&path, property.as_str().unwrap_or_default()),
            kind: FieldErrorType::Required,
            value: None,
            detail: String::new(),
        },
        Kind::Enum { options } => FieldError {
            field: path.clone(),
            kind: FieldErrorType::Unsupported,
            value: Some(instance.clone()),
            detail: format!(
                "supported values: {}",
                options
                    .as_array()
                    .map(|o| o.iter().map(render_value).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ),
        },
        Kind::Pattern { pattern } => invalid(format!("{path} in body should match '{pattern}'")),
        Kind::Minimum { limit } => invalid(format!(
            "{path} in body should be greater than or equal to {}",
            number(limit)
        )),
        Kind::Maximum { limit } => invalid(format!(
            "{path} in body should be less than or equal to {}",
            number(limit)
        )),
        Kind::MinLength { limit } => invalid(format!(
            "{path} in body should be at least {limit} chars long"
        )),
        Kind::MaxLength { limit } => FieldError {
            field: path.clone(),
            kind: FieldErrorType::TooLong,
            value: Some(instance.clone()),
            detail: format!("may not be more than {limit} bytes"),
        },
        // The API server shows a list's length, not the list, as the value.
        Kind::MinItems { limit } => FieldError {
            field: path.clone(),
            kind: FieldErrorType::Invalid,
            value: Some(Value::from(instance.as_array().map_or(0, Vec::len))),
            detail: format!("{path} in body should have at least {limit} items"),
        },
        Kind::MaxItems { limit } => FieldError {
            field: path.clone(),
            kind: FieldErrorType::TooMany,
            value: Some(Value::from(instance.as_array().map_or(0, Vec::len))),
            detail: format!("must have at most {limit} items"),
        },
        Kind::MinProperties { limit } => invalid(format!(
            "{path} in body should have at least {limit} properties"
        )),
        Kind::MaxProperties { limit } => FieldError {
            field: path.clone(),
            kind: FieldErrorType::TooMany,
            value: Some(Value::from(instance.as_object().map_or(0, |m| m.len()))),
            detail: format!("must have at most {limit} items"),
        },
        Kind::Type { kind } => {
            let expected = match kind {
                jsonschema::error::TypeKind::Single(t) => t.to_string(),
                jsonschema::error::TypeKind::Multiple(ts) => ts
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            FieldError {
                field: path.clone(),
                kind: FieldErrorType::Invalid,
                value: Some(Value::String(json_type(&instance).into())),
                detail: format!(
                    "{path} in body must be of type {expected}: {}",
                    render_value(&instance)
                ),
            }
        }
        _ => invalid(error.to_string()),
    }
}

fn cel_error(failure: &kube_cel::ValidationError, object: &Value) -> FieldError {
    // The API server reports a CEL failure with the type of the value as the "value".
    let value = lookup(object, &failure.field_path).map(|v| Value::String(json_type(v).into()));
    let kind = match failure.reason.as_deref() {
        Some("FieldValueRequired") => FieldErrorType::Required,
        Some("FieldValueForbidden") => FieldErrorType::Forbidden,
        _ => FieldErrorType::Invalid,
    };
    FieldError {
        field: failure.field_path.clone(),
        kind,
        value: value.or(Some(Value::String("object".into()))),
        detail: failure.message.clone(),
    }
}

/// Finds the value at a path like `spec.bastion.allowedCidrs[0]`.
fn lookup<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = object;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            current = current.get(name)?;
        }
        for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
            current = current.get(index.parse::<usize>().ok()?)?;
        }
    }
    Some(current)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn number(limit: &Value) -> String {
    match limit.as_f64() {
        Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
        _ => limit.to_string(),
    }
}

fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_becomes_kubernetes_field_path() {
        for (pointer, path, why) in [
            ("", "", "the root has an empty path"),
            ("/spec/region", "spec.region", "object keys join with dots"),
            (
                "/spec/availabilityZones/1",
                "spec.availabilityZones[1]",
                "array indexes use brackets",
            ),
            (
                "/spec/tags/a~1b",
                "spec.tags.a/b",
                "JSON pointer escapes are undone",
            ),
        ] {
            assert_eq!(field_path(pointer), path, "{why}");
        }
    }

    #[test]
    fn nullable_allows_null_only_where_declared() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "string", "nullable": true},
            "b": {"type": "string"}
        }});
        let v = SchemaValidator::new("t", schema).unwrap();
        assert!(
            v.validate(&json!({"a": null}), None).is_ok(),
            "nullable field accepts null"
        );
        let err = v.validate(&json!({"b": null}), None).unwrap_err();
        assert_eq!(
            err.0[0].field, "b",
            "non-nullable field refuses null: {err}"
        );
    }

    #[test]
    fn errors_are_worded_like_the_api_server() {
        let schema = json!({"type": "object", "required": ["spec"], "properties": {"spec": {
            "type": "object", "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z]+$"},
                "mode": {"type": "string", "enum": ["A", "B"]},
                "count": {"type": "integer", "minimum": 2},
            },
            "x-kubernetes-validations": [{"rule": "self.name != 'forbidden'", "message": "name is forbidden"}]
        }}});
        let v = SchemaValidator::new("t", schema).unwrap();
        let cases = [
            (json!({}), "spec: Required value", "missing required object"),
            (
                json!({"spec": {"name": "X1"}}),
                "spec.name: Invalid value: \"X1\": spec.name in body should match '^[a-z]+$'",
                "pattern",
            ),
            (
                json!({"spec": {"name": "a", "mode": "C"}}),
                "spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\"",
                "enum",
            ),
            (
                json!({"spec": {"name": "a", "count": 1}}),
                "spec.count: Invalid value: 1: spec.count in body should be greater than or equal to 2",
                "minimum",
            ),
            (
                json!({"spec": {"name": "forbidden"}}),
                "spec: Invalid value: \"object\": name is forbidden",
                "CEL rule",
            ),
        ];
        for (object, expected, why) in cases {
            let err = v.validate(&object, None).unwrap_err();
            assert_eq!(err.0[0].to_string(), expected, "{why}");
        }
    }

    #[test]
    fn unknown_fields_are_listed_with_their_path() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": {
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                "list": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}}
            }}
        }});
        let v = SchemaValidator::new("t", schema).unwrap();
        let object = json!({"metadata": {"name": "x", "labels": {}}, "spec": {
            "tags": {"anything": "goes"}, "list": [{"a": "1", "b": "2"}], "typo": 1
        }, "extra": true});
        let mut unknown = v.unknown_fields(&object);
        unknown.sort();
        assert_eq!(unknown, vec!["extra", "spec.list[0].b", "spec.typo"]);
        let mut pruned = object.clone();
        v.prune(&mut pruned);
        assert!(
            v.unknown_fields(&pruned).is_empty(),
            "pruning removes exactly what was listed"
        );
        assert_eq!(
            pruned["metadata"]["labels"],
            json!({}),
            "metadata is left alone"
        );
        assert_eq!(
            pruned["spec"]["tags"]["anything"], "goes",
            "additionalProperties keep their keys"
        );
    }
}
