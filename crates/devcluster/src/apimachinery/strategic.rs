//! Strategic merge patch for the built-in kinds the devcluster serves, a port
//! of the server-side path of `k8s.io/apimachinery/pkg/util/strategicpatch`
//! (`StrategicMergeMapPatch`: `MergeParallelList` and `IgnoreUnmatchedNulls` on),
//! plus thin wrappers over the `json-patch` crate for RFC 6902 and RFC 7386.
//!
//! Patch metadata comes from the Go types' `patchStrategy`/`patchMergeKey` tags:
//!
//! | field | strategy |
//! |---|---|
//! | `metadata.finalizers` (every kind) | merge, primitive list |
//! | `metadata.ownerReferences` (every kind) | merge, key `uid` |
//! | Namespace `status.conditions` | merge, key `type` |
//! | Namespace `spec.finalizers` | no tag: replace |
//! | CRD `spec.versions`, `status.conditions`, `spec.names.*` | no tag: replace (`listType=map` does not count for SMP) |
//! | ConfigMap, Secret, Event (core/v1, events.k8s.io/v1), Lease | no list tags besides metadata |
//!
//! Everything else: maps merge key by key (`null` deletes), lists and scalars are replaced.
//!
//! Directives: `$patch: replace|delete` on maps (`merge` on a map is an error,
//! as upstream), `$patch: delete|replace` on items of merge lists (`merge` there
//! is an error, as upstream), `$retainKeys`, `$deleteFromPrimitiveList/<f>`,
//! `$setElementOrder/<f>` (order honoured with upstream's algorithm).
//!
//! Values the patch brings in whole (key absent in the original, or the type
//! changed) are cleaned as upstream does since v1.24/v1.28: `null` members are
//! dropped and any map carrying `$patch` is removed (`discardNullValuesFromPatch`,
//! `removeDirectives`). One deliberate extension: the same cleaning, plus
//! dropping other leftover `$...` directive keys, is also applied to replaced
//! lists, `$patch: replace` maps and items appended to merge lists, where
//! upstream keeps the raw patch value and relies on the typed decode that
//! follows to zero or drop them; the devcluster stores JSON, so it gets the
//! cleaned value instead.

use std::fmt;

use serde_json::{Map, Value};

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

const ERR_BAD_PATCH_FORMAT_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_BAD_PATCH_FORMAT_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_BAD_PATCH_FORMAT_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";

/// What kube-apiserver answers for a strategic merge patch on a kind that has
/// no Go struct (custom resources): 415 with this text.
pub const SMP_UNSUPPORTED_MESSAGE: &str = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";

/// A strategic-merge failure with the HTTP status kube-apiserver would use
/// (`interpretStrategicMergePatchError`): 400 for malformed directives and
/// non-object patches, 422 for lists of lists, 415 for kinds without
/// strategic merge support, 500 for everything else (upstream returns those
/// errors unclassified, which the handler turns into an internal error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmpError {
    pub status: u16,
    pub message: String,
}

impl SmpError {
    fn bad_request(m: impl Into<String>) -> Self {
        SmpError {
            status: 400,
            message: m.into(),
        }
    }
    fn internal(m: impl Into<String>) -> Self {
        SmpError {
            status: 500,
            message: m.into(),
        }
    }
}

impl fmt::Display for SmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SmpError {}

type Res<T> = Result<T, SmpError>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Strategy {
    /// No tag: maps merge, lists are replaced.
    Default,
    /// `patchStrategy:"merge"`.
    Merge,
}

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    strategy: Strategy,
    merge_key: &'static str,
    schema: Schema,
}

/// The struct shape of a value; `Any` stands for maps, scalars and fields
/// without patch tags anywhere below them.
#[derive(Clone, Copy)]
enum Schema {
    Any,
    Struct(&'static [Field]),
}

const fn field(name: &'static str, schema: Schema) -> Field {
    Field {
        name,
        strategy: Strategy::Default,
        merge_key: "",
        schema,
    }
}

const fn merge_list(name: &'static str, merge_key: &'static str) -> Field {
    Field {
        name,
        strategy: Strategy::Merge,
        merge_key,
        schema: Schema::Any,
    }
}

const OBJECT_META: &[Field] = &[
    merge_list("finalizers", ""),
    merge_list("ownerReferences", "uid"),
];
const METADATA: Field = field("metadata", Schema::Struct(OBJECT_META));
const META_ONLY: &[Field] = &[METADATA];
const NAMESPACE_STATUS: &[Field] = &[merge_list("conditions", "type")];
const NAMESPACE: &[Field] = &[METADATA, field("status", Schema::Struct(NAMESPACE_STATUS))];
// `secrets` is patchStrategy:"merge" by name; `imagePullSecrets` has no tag (replaced).
const SERVICE_ACCOUNT: &[Field] = &[METADATA, merge_list("secrets", "name")];

fn kind_schema(kind: &str) -> Option<Schema> {
    match kind {
        "Namespace" => Some(Schema::Struct(NAMESPACE)),
        "ServiceAccount" => Some(Schema::Struct(SERVICE_ACCOUNT)),
        // CRD: spec.versions and status.conditions carry no patchStrategy tag.
        "ConfigMap" | "Secret" | "Event" | "Lease" | "CustomResourceDefinition" => {
            Some(Schema::Struct(META_ONLY))
        }
        _ => None,
    }
}

/// True for the kinds [`strategic_merge`] knows. Other kinds (custom
/// resources) get [`SMP_UNSUPPORTED_MESSAGE`] with status 415 upstream.
pub fn supports_strategic_merge(kind: &str) -> bool {
    kind_schema(kind).is_some()
}

fn lookup(schema: Schema, key: &str) -> (Strategy, &'static str, Schema) {
    if let Schema::Struct(fields) = schema
        && let Some(f) = fields.iter().find(|f| f.name == key)
    {
        return (f.strategy, f.merge_key, f.schema);
    }
    (Strategy::Default, "", Schema::Any)
}

/// Apply a strategic merge patch (`application/strategic-merge-patch+json`)
/// to `original`, an object of `kind`. Errors are the message text only; see
/// [`strategic_merge_with_status`] for the HTTP status too.
pub fn strategic_merge(original: &Value, patch: &Value, kind: &str) -> Result<Value, String> {
    strategic_merge_with_status(original, patch, kind).map_err(|e| e.message)
}

/// [`strategic_merge`] with the status code kube-apiserver would answer.
pub fn strategic_merge_with_status(original: &Value, patch: &Value, kind: &str) -> Res<Value> {
    let Some(schema) = kind_schema(kind) else {
        return Err(SmpError {
            status: 415,
            message: SMP_UNSUPPORTED_MESSAGE.to_string(),
        });
    };
    let patch = match patch {
        Value::Object(m) => m.clone(),
        // json.Unmarshal of `null` into a map leaves it empty: nothing changes.
        Value::Null => return Ok(original.clone()),
        other => {
            return Err(SmpError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind_word(other)
            )));
        }
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(SmpError::bad_request("invalid JSON document")),
    };
    merge_map(original, patch, schema).map(Value::Object)
}

fn json_kind_word(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

/// Go's `%v` of a decoded JSON value (`map[a:1 b:x]`, `[a b]`, `<nil>`).
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => go_fmt_map(m),
    }
}

fn go_fmt_map(m: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let parts: Vec<String> = keys
        .iter()
        .map(|k| format!("{k}:{}", go_fmt(&m[*k])))
        .collect();
    format!("map[{}]", parts.join(" "))
}

/// Go's `reflect.TypeOf(x)` text for a decoded JSON value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn err_bad_arg_type(expected: &str, actual: &Value) -> SmpError {
    SmpError::internal(format!(
        "expected a {expected}, but received a {}",
        go_type(actual)
    ))
}

fn err_no_merge_key(m: &Map<String, Value>, key: &str) -> SmpError {
    SmpError::internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt_map(m)
    ))
}

fn err_bad_patch_type(t: &Value, m: &Map<String, Value>) -> SmpError {
    let t = match t {
        Value::String(s) => s.clone(),
        other => format!("%!s({}={})", go_type(other), go_fmt(other)),
    };
    SmpError::internal(format!("unknown patch type: {t} in map: {}", go_fmt_map(m)))
}

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE_MARKER
        || k == RETAIN_KEYS_DIRECTIVE
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
        || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
}

/// A value taken from the patch as a whole: `null` members are dropped, a map
/// carrying `$patch` is dropped entirely (`None`; inside a list, the item goes),
/// and other directive keys are removed.
fn adopt(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            Some(Value::Object(
                m.into_iter()
                    .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
                    .filter_map(|(k, v)| adopt(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(a) => Some(Value::Array(adopt_all(a))),
        other => Some(other),
    }
}

fn adopt_all(items: Vec<Value>) -> Vec<Value> {
    items.into_iter().filter_map(adopt).collect()
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema,
) -> Res<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.remove(DIRECTIVE_MARKER);
                match adopt(Value::Object(patch)) {
                    Some(Value::Object(m)) => Ok(m),
                    _ => Ok(Map::new()),
                }
            }
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(err_bad_patch_type(directive, &patch)),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    merge_patch_into_original(&mut original, &mut patch, schema)?;

    for (key, patch_v) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
        } else {
            (key, false)
        };

        if patch_v.is_null() {
            original.remove(&key);
            continue;
        }

        let Some(orig_v) = original.remove(&key) else {
            // Absent in the original: take the cleaned patch value; a deletion
            // list has nothing to delete from (fixed upstream in v1.23).
            if !is_delete_list && let Some(v) = adopt(patch_v) {
                original.insert(key, v);
            }
            continue;
        };

        let (strategy, merge_key, child) = lookup(schema, &key);
        let merged = match (orig_v, patch_v) {
            (Value::Object(o), Value::Object(p)) => Some(Value::Object(merge_map(o, p, child)?)),
            (Value::Array(o), Value::Array(p)) => Some(Value::Array(merge_slice_handler(
                o,
                p,
                strategy,
                merge_key,
                child,
                is_delete_list,
            )?)),
            // Type changed: a deletion list leaves the field alone.
            (o, _) if is_delete_list => Some(o),
            (_, p) => adopt(p),
        };
        if let Some(v) = merged {
            original.insert(key, v);
        }
    }
    Ok(original)
}

fn extract_key(s: &str, prefix: &str) -> Res<String> {
    match s.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX => {
            Err(SmpError::bad_request(ERR_BAD_PATCH_FORMAT_PRIMITIVE_LIST))
        }
        _ => Err(SmpError::bad_request(
            ERR_BAD_PATCH_FORMAT_SET_ELEMENT_ORDER,
        )),
    }
}

fn apply_retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Res<()> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(list) = retain else {
        return Err(SmpError::bad_request(ERR_BAD_PATCH_FORMAT_RETAIN_KEYS));
    };
    let keep = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        {
            continue;
        }
        if !keep(k) {
            return Err(SmpError::bad_request(ERR_BAD_PATCH_FORMAT_RETAIN_KEYS));
        }
    }
    original.retain(|k, _| keep(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merge that field now and order the result by
/// the directive, then by the patch, then by the live list.
fn merge_patch_into_original(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Schema,
) -> Res<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in keys {
        let order_v = patch.remove(&key).unwrap_or(Value::Null);
        let Value::Array(order) = order_v else {
            return Err(err_bad_arg_type("[]interface {}", &order_v));
        };
        let field_key = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
        let orig_list = match original.get(&field_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", other)),
        };
        let patch_list = match patch.get(&field_key) {
            None => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(err_bad_arg_type("[]interface {}", other)),
        };
        let (strategy, merge_key, child) = lookup(schema, &field_key);
        validate_patch_with_set_order_list(
            patch_list.as_deref().unwrap_or(&[]),
            &order,
            merge_key,
        )?;
        let orig_vals = orig_list.clone().unwrap_or_default();
        let patch_vals = patch_list.clone().unwrap_or_default();
        let merged = match (orig_list, patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => adopt_all(p),
            (Some(o), Some(p)) => merge_slice_handler(o, p, strategy, merge_key, child, false)?,
            (None, None) => continue,
        };
        let (patch_items, server_only) = partition(merged, &order, merge_key)?;
        let kind = slice_element_kind(&[&orig_vals, &patch_vals])?;
        let both = normalize_element_order(
            patch_items,
            server_only,
            &order,
            &orig_vals,
            merge_key,
            kind,
        )?;
        original.insert(field_key.clone(), Value::Array(both));
        patch.remove(&field_key);
    }
    Ok(())
}

fn validate_patch_with_set_order_list(
    patch: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Res<()> {
    if order.is_empty() || patch.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<Value> = if merge_key.is_empty() {
        patch.to_vec()
    } else {
        extract_to_delete_items(patch.to_vec())?.0
    };
    let (mut pi, mut si) = (0, 0);
    while pi < non_delete.len() && si < order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(&non_delete[pi], &order[si], merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= order.len() {
        return Err(SmpError::internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_fmt(&Value::Array(patch.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_value_equal(left: &Value, right: &Value, merge_key: &str) -> Res<bool> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let l = left
        .as_object()
        .ok_or_else(|| err_bad_arg_type("map[string]interface {}", left))?;
    let r = right
        .as_object()
        .ok_or_else(|| err_bad_arg_type("map[string]interface {}", right))?;
    let lv = l
        .get(merge_key)
        .ok_or_else(|| err_no_merge_key(l, merge_key))?;
    let rv = r
        .get(merge_key)
        .ok_or_else(|| err_no_merge_key(r, merge_key))?;
    Ok(lv == rv)
}

fn extract_to_delete_items(list: Vec<Value>) -> Res<(Vec<Value>, Vec<Value>)> {
    let (mut keep, mut delete) = (Vec::new(), Vec::new());
    for v in list {
        let Some(m) = v.as_object() else {
            return Err(err_bad_arg_type("map[string]interface {}", &v));
        };
        if m.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
            delete.push(v);
        } else {
            keep.push(v);
        }
    }
    Ok((keep, delete))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ElemKind {
    Map,
    Scalar(u8),
}

/// Go `sliceElementType`: all elements of all lists share one type, never a list.
fn slice_element_kind(lists: &[&[Value]]) -> Res<ElemKind> {
    let mut prev: Option<ElemKind> = None;
    for list in lists {
        for v in list.iter() {
            let cur = match v {
                // Upstream only checks the first element for being a list; a
                // later list element is reported as a type mismatch below.
                Value::Array(_) if prev.is_none() => {
                    return Err(SmpError {
                        status: 422,
                        message: ERR_NO_LIST_OF_LISTS.to_string(),
                    });
                }
                Value::Array(_) => ElemKind::Scalar(5),
                Value::Object(_) => ElemKind::Map,
                Value::String(_) => ElemKind::Scalar(0),
                Value::Number(n) if n.is_f64() => ElemKind::Scalar(1),
                Value::Number(_) => ElemKind::Scalar(2),
                Value::Bool(_) => ElemKind::Scalar(3),
                Value::Null => ElemKind::Scalar(4),
            };
            match prev {
                Some(p) if p != cur => {
                    let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                    return Err(SmpError::internal(format!(
                        "list element types are not identical: {}",
                        go_fmt(&Value::Array(all))
                    )));
                }
                _ => prev = Some(cur),
            }
        }
    }
    prev.ok_or_else(|| SmpError::internal("no elements in any of the given slices"))
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    strategy: Strategy,
    merge_key: &str,
    elem: Schema,
    is_delete_list: bool,
) -> Res<Vec<Value>> {
    // A deletion list deletes whatever the field's strategy (upstream since v1.25).
    if strategy == Strategy::Merge || is_delete_list {
        merge_slice(original, patch, elem, merge_key, is_delete_list)
    } else {
        Ok(adopt_all(patch))
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem: Schema,
    merge_key: &str,
    is_delete_list: bool,
) -> Res<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = slice_element_kind(&[&original, &patch])?;
    let (original, patch, merged) = if kind != ElemKind::Map {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.contains(v))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(SmpError::internal(
                "cannot merge lists without merge key for type struct",
            ));
        }
        let (original, patch) = merge_slice_with_special_elements(original, patch, merge_key)?;
        let merged =
            merge_slice_without_special_elements(original.clone(), &patch, merge_key, elem)?;
        (original, patch, merged)
    };
    let (patch_items, server_only) = partition(merged, &patch, merge_key)?;
    normalize_element_order(patch_items, server_only, &patch, &original, merge_key, kind)
}

fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Res<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let Some(m) = v.as_object() else {
            return Err(err_bad_arg_type("map[string]interface {}", &v));
        };
        let Some(directive) = m.get(DIRECTIVE_MARKER) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let Some(key_value) = m.get(merge_key) else {
                    return Err(err_no_merge_key(m, merge_key));
                };
                for (i, item) in original.iter().enumerate() {
                    if !item.is_object() {
                        return Err(SmpError::internal(format!(
                            "value for key {i} is not a map."
                        )));
                    }
                }
                original.retain(|item| item.get(merge_key) != Some(key_value));
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(SmpError::internal(
                    "merging lists cannot yet be specified in the patch",
                ));
            }
            _ => return Err(err_bad_patch_type(directive, m)),
        }
    }
    if replace {
        return Ok((adopt_all(plain), Vec::new()));
    }
    Ok((original, plain))
}

/// Index of the first map in `list` whose `key` equals `value`.
fn find_map_by_key(list: &[Value], key: &str, value: &Value) -> Res<Option<usize>> {
    for (i, v) in list.iter().enumerate() {
        let Some(m) = v.as_object() else {
            return Err(SmpError::internal(format!(
                "value for key {i} is not a map."
            )));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    elem: Schema,
) -> Res<Vec<Value>> {
    for v in patch {
        let Some(m) = v.as_object() else {
            return Err(err_bad_arg_type("map[string]interface {}", v));
        };
        let Some(key_value) = m.get(merge_key) else {
            return Err(err_no_merge_key(m, merge_key));
        };
        match find_map_by_key(&original, merge_key, key_value)? {
            Some(i) => {
                let Value::Object(orig_map) = std::mem::take(&mut original[i]) else {
                    unreachable!("find_map_by_key only returns maps");
                };
                original[i] = Value::Object(merge_map(orig_map, m.clone(), elem)?);
            }
            None => original.extend(adopt(v.clone())),
        }
    }
    Ok(original)
}

/// Split `items` into those present in `by` (by merge key for maps) and the rest.
fn partition(items: Vec<Value>, by: &[Value], merge_key: &str) -> Res<(Vec<Value>, Vec<Value>)> {
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for v in items {
        let found = if merge_key.is_empty() {
            by.contains(&v)
        } else {
            let Some(m) = v.as_object() else {
                return Err(err_bad_arg_type("map[string]interface {}", &v));
            };
            let Some(key_value) = m.get(merge_key) else {
                return Err(err_no_merge_key(m, merge_key));
            };
            find_map_by_key(by, merge_key, key_value)?.is_some()
        };
        if found {
            present.push(v);
        } else {
            absent.push(v);
        }
    }
    Ok((present, absent))
}

/// Go `index`: position of `item` in `list`, by merge key value for maps.
fn index_of(list: &[Value], item: &Value, merge_key: &str, kind: ElemKind) -> Option<usize> {
    if kind == ElemKind::Map {
        let key_of = |v: &Value| v.as_object().and_then(|m| m.get(merge_key)).cloned();
        let want = key_of(item);
        list.iter().position(|v| key_of(v) == want)
    } else {
        list.iter().position(|v| v == item)
    }
}

fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: ElemKind,
) -> Res<Vec<Value>> {
    let patch = normalize_slice_order(patch, patch_order, merge_key, kind)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted_slice(
        server_only,
        patch,
        server_order,
        merge_key,
        kind,
    ))
}

fn normalize_slice_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: ElemKind,
) -> Res<Vec<Value>> {
    let (mut to_sort, to_delete) = if kind == ElemKind::Map {
        for v in to_sort.iter().chain(order.iter()) {
            let Some(m) = v.as_object() else {
                return Err(err_bad_arg_type("map[string]interface {}", v));
            };
            if !m.contains_key(merge_key) {
                return Err(err_no_merge_key(m, merge_key));
            }
        }
        extract_to_delete_items(to_sort)?
    } else {
        (to_sort, Vec::new())
    };
    // Go's sort.SliceStable (insertion sort for short lists) with upstream's
    // comparator, which calls an element "less" whenever either is unknown.
    let less = |a: &Value, b: &Value| match index_of(order, a, merge_key, kind) {
        Some(ia) => match index_of(order, b, merge_key, kind) {
            Some(ib) => ia < ib,
            None => true,
        },
        None => true,
    };
    for i in 1..to_sort.len() {
        let mut j = i;
        while j > 0 && less(&to_sort[j], &to_sort[j - 1]) {
            to_sort.swap(j, j - 1);
            j -= 1;
        }
    }
    to_sort.extend(to_delete);
    Ok(to_sort)
}

/// Go `mergeSortedSlice`: interleave server-only items (left) with patch items
/// (right), using the live order to decide; unknown items from the patch go first.
fn merge_sorted_slice(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: ElemKind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key, kind),
                    index_of(server_order, r, merge_key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Apply an RFC 6902 JSON patch (`application/json-patch+json`) with the
/// `json-patch` crate. `patch` must be an array of operations.
///
/// As the API server's JSON patch library does, a `test` of a path that does not exist
/// against `null` succeeds (kube-runtime's finalizer helper sends exactly that before it
/// adds the first finalizer); RFC 6902 alone would fail it.
pub fn apply_json_patch(doc: &Value, patch: &Value) -> Result<Value, String> {
    let mut ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| format!("invalid JSON patch: {e}"))?;
    ops.0.retain(|op| match op {
        json_patch::PatchOperation::Test(test) if test.value.is_null() => {
            doc.pointer(test.path.as_str()).is_some()
        }
        _ => true,
    });
    let mut out = doc.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Apply an RFC 7386 JSON merge patch (`application/merge-patch+json`) with the `json-patch` crate.
pub fn apply_merge_patch(doc: &Value, patch: &Value) -> Value {
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(original: Value, patch: Value, kind: &str) -> Result<Value, String> {
        strategic_merge(&original, &patch, kind)
    }

    #[test]
    fn list_and_map_strategies_table() {
        let cases: Vec<(&str, &str, Value, Value, Value)> = vec![
            (
                "finalizers merge as a set; a new one goes first (upstream order rule)",
                "ConfigMap",
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"finalizers": ["c", "a"]}}),
                json!({"metadata": {"finalizers": ["c", "a", "b"]}}),
            ),
            (
                "finalizers added to an object without any",
                "Namespace",
                json!({"metadata": {"name": "n"}}),
                json!({"metadata": {"finalizers": ["x"]}}),
                json!({"metadata": {"name": "n", "finalizers": ["x"]}}),
            ),
            (
                "ownerReferences merge by uid: same uid is merged, new uid is added",
                "Secret",
                json!({"metadata": {"ownerReferences": [
                    {"uid": "1", "name": "a", "kind": "X"},
                    {"uid": "2", "name": "b", "kind": "X"}]}}),
                json!({"metadata": {"ownerReferences": [
                    {"uid": "2", "controller": true},
                    {"uid": "3", "name": "c", "kind": "X"}]}}),
                json!({"metadata": {"ownerReferences": [
                    {"uid": "1", "name": "a", "kind": "X"},
                    {"uid": "2", "name": "b", "kind": "X", "controller": true},
                    {"uid": "3", "name": "c", "kind": "X"}]}}),
            ),
            (
                "ServiceAccount secrets merge by name (a new one first), imagePullSecrets are replaced",
                "ServiceAccount",
                json!({"secrets": [{"name": "a"}], "imagePullSecrets": [{"name": "r1"}]}),
                json!({"secrets": [{"name": "b"}], "imagePullSecrets": [{"name": "r2"}]}),
                json!({"secrets": [{"name": "b"}, {"name": "a"}], "imagePullSecrets": [{"name": "r2"}]}),
            ),
            (
                "$patch: delete removes the list item with that merge key",
                "ConfigMap",
                json!({"metadata": {"ownerReferences": [{"uid": "1"}, {"uid": "2"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "2"}]}}),
            ),
            (
                "$patch: replace on a list item replaces the whole list",
                "ConfigMap",
                json!({"metadata": {"ownerReferences": [{"uid": "1"}, {"uid": "2"}]}}),
                json!({"metadata": {"ownerReferences": [{"$patch": "replace"}, {"uid": "9"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "9"}]}}),
            ),
            (
                "$deleteFromPrimitiveList removes finalizers",
                "Namespace",
                json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}}),
                json!({"metadata": {"finalizers": ["a", "c"]}}),
            ),
            (
                "null deletes a map key, other keys merge",
                "ConfigMap",
                json!({"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "y"}}}),
                json!({"data": {"a": null, "c": "3"}, "metadata": {"labels": {"z": "w"}}}),
                json!({"data": {"b": "2", "c": "3"}, "metadata": {"labels": {"x": "y", "z": "w"}}}),
            ),
            (
                "null for an absent key is ignored",
                "ConfigMap",
                json!({"data": {"a": "1"}}),
                json!({"data": {"zz": null}, "nope": null}),
                json!({"data": {"a": "1"}}),
            ),
            (
                "$retainKeys clears keys not listed and merges the rest",
                "ConfigMap",
                json!({"data": {"a": "1", "b": "2", "c": "3"}}),
                json!({"data": {"$retainKeys": ["a", "c"], "c": "30"}}),
                json!({"data": {"a": "1", "c": "30"}}),
            ),
            (
                "$patch: replace on a map replaces it",
                "ConfigMap",
                json!({"data": {"a": "1", "b": "2"}}),
                json!({"data": {"$patch": "replace", "z": "9"}}),
                json!({"data": {"z": "9"}}),
            ),
            (
                "$patch: delete on a map empties it",
                "Secret",
                json!({"metadata": {"labels": {"a": "1"}}, "data": {"k": "dg=="}}),
                json!({"metadata": {"labels": {"$patch": "delete"}}}),
                json!({"metadata": {"labels": {}}, "data": {"k": "dg=="}}),
            ),
            (
                "$setElementOrder orders finalizers",
                "Namespace",
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"], "finalizers": ["c"]}}),
                json!({"metadata": {"finalizers": ["b", "c", "a"]}}),
            ),
            (
                "$setElementOrder orders ownerReferences by uid",
                "Lease",
                json!({"metadata": {"ownerReferences": [{"uid": "1"}, {"uid": "2"}]}}),
                json!({"metadata": {"$setElementOrder/ownerReferences": [{"uid": "2"}, {"uid": "1"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "2"}, {"uid": "1"}]}}),
            ),
            (
                "Namespace status.conditions merge by type",
                "Namespace",
                json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]}}),
                json!({"status": {"conditions": [{"type": "B", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "True"}]}}),
            ),
            (
                "Namespace spec.finalizers has no strategy: replaced",
                "Namespace",
                json!({"spec": {"finalizers": ["kubernetes"]}}),
                json!({"spec": {"finalizers": ["other"]}}),
                json!({"spec": {"finalizers": ["other"]}}),
            ),
            (
                "CRD spec.versions has no strategy: replaced whole",
                "CustomResourceDefinition",
                json!({"spec": {"versions": [{"name": "v1", "served": true}, {"name": "v2", "served": true}]}}),
                json!({"spec": {"versions": [{"name": "v1", "served": false}]}}),
                json!({"spec": {"versions": [{"name": "v1", "served": false}]}}),
            ),
            (
                "CRD status.conditions has no patchStrategy tag: replaced whole",
                "CustomResourceDefinition",
                json!({"status": {"conditions": [{"type": "Established"}, {"type": "NamesAccepted"}]}}),
                json!({"status": {"conditions": [{"type": "Established", "status": "True"}]}}),
                json!({"status": {"conditions": [{"type": "Established", "status": "True"}]}}),
            ),
            (
                "a brought-in subtree is cleaned of nulls",
                "Event",
                json!({"metadata": {"name": "e"}}),
                json!({"series": {"count": 2, "lastObservedTime": null}}),
                json!({"metadata": {"name": "e"}, "series": {"count": 2}}),
            ),
            (
                "scalars and type changes are replaced",
                "Event",
                json!({"count": 1, "note": {"a": 1}}),
                json!({"count": 2, "note": "flat"}),
                json!({"count": 2, "note": "flat"}),
            ),
            (
                "$deleteFromPrimitiveList on an absent list adds nothing (fixed upstream in v1.23)",
                "ConfigMap",
                json!({"metadata": {"name": "c"}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
                json!({"metadata": {"name": "c"}}),
            ),
            (
                "$deleteFromPrimitiveList deletes from a replace-strategy list too (upstream v1.25)",
                "Namespace",
                json!({"spec": {"finalizers": ["kubernetes", "x"]}}),
                json!({"spec": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
                json!({"spec": {"finalizers": ["kubernetes"]}}),
            ),
            (
                "kubectl apply removing a finalizer: deletion list plus setElementOrder",
                "Namespace",
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"],
                    "$setElementOrder/finalizers": ["a"]}}),
                json!({"metadata": {"finalizers": ["a"]}}),
            ),
            (
                "kubectl apply removing an ownerReference: $patch delete plus setElementOrder",
                "ConfigMap",
                json!({"metadata": {"ownerReferences": [{"uid": "1"}, {"uid": "2"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "2", "$patch": "delete"}],
                    "$setElementOrder/ownerReferences": [{"uid": "1"}]}}),
                json!({"metadata": {"ownerReferences": [{"uid": "1"}]}}),
            ),
            (
                "directive items are dropped from a list brought in whole (removeDirectives)",
                "ConfigMap",
                json!({"metadata": {"name": "c"}}),
                json!({"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}, {"uid": "2"}]}}),
                json!({"metadata": {"name": "c", "ownerReferences": [{"uid": "2"}]}}),
            ),
            (
                "null patch changes nothing",
                "ConfigMap",
                json!({"data": {"a": "1"}}),
                Value::Null,
                json!({"data": {"a": "1"}}),
            ),
        ];
        for (what, kind, original, patch, want) in cases {
            assert_eq!(smp(original, patch, kind), Ok(want), "{what}");
        }
    }

    #[test]
    fn kubectl_flows() {
        // `kubectl patch configmap cm -p '{"data":{"k":"v2"}}'` (default type strategic).
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "d", "resourceVersion": "5"},
            "data": {"k": "v1", "other": "x"}});
        let got = smp(cm, json!({"data": {"k": "v2"}}), "ConfigMap").unwrap();
        assert_eq!(
            got["data"],
            json!({"k": "v2", "other": "x"}),
            "kubectl patch merges data"
        );
        assert_eq!(
            got["metadata"]["resourceVersion"], "5",
            "untouched fields stay"
        );

        // Client-side `kubectl apply` of a Namespace already applied once: a
        // three-way patch updating the annotation, adding and removing labels.
        let ns = json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "tenant-a",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":1}"},
                "labels": {"kubernetes.io/metadata.name": "tenant-a", "team": "x", "old": "y"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        let patch = json!({"metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}"},
            "labels": {"old": null, "hipaa": "true"}}});
        let got = smp(ns, patch, "Namespace").unwrap();
        assert_eq!(
            got["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "tenant-a", "team": "x", "hipaa": "true"}),
            "apply adds and removes labels"
        );
        assert_eq!(
            got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{\"new\":1}",
            "apply refreshes last-applied"
        );
        assert_eq!(
            got["spec"],
            json!({"finalizers": ["kubernetes"]}),
            "spec untouched"
        );
    }

    #[test]
    fn error_table() {
        let orig = json!({"metadata": {"ownerReferences": [{"uid": "1"}], "finalizers": ["a"]},
            "data": {"a": "1"}});
        let cases: Vec<(&str, Value, &str, u16, &str)> = vec![
            (
                "array patch body is a bad request",
                json!([1]),
                "ConfigMap",
                400,
                "json: cannot unmarshal array into Go value of type map[string]interface {}",
            ),
            (
                "custom resources do not support strategic merge",
                json!({}),
                "Widget",
                415,
                SMP_UNSUPPORTED_MESSAGE,
            ),
            (
                "retainKeys must list every patched key",
                json!({"data": {"$retainKeys": ["a"], "b": "2"}}),
                "ConfigMap",
                400,
                "invalid patch format of retainKeys",
            ),
            (
                "retainKeys must be a list",
                json!({"data": {"$retainKeys": "a"}}),
                "ConfigMap",
                400,
                "invalid patch format of retainKeys",
            ),
            (
                "deleteFromPrimitiveList needs a /field",
                json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
                "ConfigMap",
                400,
                "invalid patch format of primitive list",
            ),
            (
                "$patch: merge on a map is unknown (as upstream)",
                json!({"data": {"$patch": "merge"}}),
                "ConfigMap",
                500,
                "unknown patch type: merge in map: map[$patch:merge]",
            ),
            (
                "$patch: merge on a list item is refused",
                json!({"metadata": {"ownerReferences": [{"uid": "1", "$patch": "merge"}]}}),
                "ConfigMap",
                500,
                "merging lists cannot yet be specified in the patch",
            ),
            (
                "merge list items need the merge key",
                json!({"metadata": {"ownerReferences": [{"name": "x"}]}}),
                "ConfigMap",
                500,
                "map: map[name:x] does not contain declared merge key: uid",
            ),
            (
                "a list among strings is a type mismatch",
                json!({"metadata": {"finalizers": [["x"]]}}),
                "ConfigMap",
                500,
                "list element types are not identical: [[a] [[x]]]",
            ),
            (
                "setElementOrder must be a list",
                json!({"metadata": {"$setElementOrder/finalizers": "a"}}),
                "ConfigMap",
                500,
                "expected a []interface {}, but received a string",
            ),
        ];
        for (what, patch, kind, status, message) in cases {
            let got = strategic_merge_with_status(&orig, &patch, kind);
            assert_eq!(
                got,
                Err(SmpError {
                    status,
                    message: message.to_string()
                }),
                "{what}"
            );
        }
    }

    #[test]
    fn list_of_lists_is_unprocessable() {
        let got = strategic_merge_with_status(
            &json!({"metadata": {"finalizers": []}}),
            &json!({"metadata": {"finalizers": [["x"]]}}),
            "Namespace",
        );
        assert_eq!(
            got.map_err(|e| (e.status, e.message)),
            Err((422, "lists of lists are not supported".to_string())),
            "first element being a list gives 422"
        );
    }

    #[test]
    fn json_patch_test_of_a_missing_path_against_null_succeeds() {
        // kube-runtime's finalizer helper: test /metadata/finalizers == null, then add it.
        let doc = json!({"metadata": {"name": "a"}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["hipaa.dev/cleanup"]}
        ]);
        let got = apply_json_patch(&doc, &patch).unwrap();
        assert_eq!(got["metadata"]["finalizers"], json!(["hipaa.dev/cleanup"]));
        // Once the field exists, the same test fails, as on the API server.
        assert!(apply_json_patch(&got, &patch).is_err());
    }

    #[test]
    fn json_patch_and_merge_patch_wrappers() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}});
        let got = apply_json_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/metadata/labels/b", "value": "2"},
                {"op": "remove", "path": "/data/k"},
                {"op": "test", "path": "/metadata/labels/a", "value": "1"}
            ]),
        );
        assert_eq!(
            got,
            Ok(json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {}})),
            "RFC 6902 add/remove/test"
        );
        let failed = apply_json_patch(
            &doc,
            &json!([{"op": "test", "path": "/data/k", "value": "x"}]),
        );
        assert!(failed.is_err(), "a failing test op is an error");
        assert!(
            apply_json_patch(&doc, &json!({"op": "add"})).is_err(),
            "a non-array patch is an error"
        );
        assert_eq!(
            apply_merge_patch(
                &doc,
                &json!({"metadata": {"labels": {"a": null, "c": "3"}}})
            ),
            json!({"metadata": {"labels": {"c": "3"}}, "data": {"k": "v"}}),
            "RFC 7386 null deletes, objects merge"
        );
        assert_eq!(
            apply_merge_patch(&doc, &json!({"metadata": {"finalizers": ["x"]}}))["metadata"]["finalizers"],
            json!(["x"]),
            "RFC 7386 replaces lists"
        );
    }
}
