//! Kubernetes server-side apply (SSA) and `metadata.managedFields` tracking.
//!
//! Pure functions over [`serde_json::Value`] that reproduce what kube-apiserver's
//! field manager (structured-merge-diff underneath) does for a single API version:
//!
//! * [`apply`] handles `PATCH` with `application/apply-patch+yaml`: it merges the applied
//!   configuration into the live object, removes fields the applier stopped applying,
//!   detects conflicts with other managers and records the applier's `Apply` entry.
//! * [`record_update`] handles every other write (create, `PUT`, merge / JSON /
//!   strategic-merge patch): it records the fields the write changed in the writer's
//!   `Update` entry and takes them away from every other manager.
//!
//! Objects are whole Kubernetes objects (`apiVersion`, `kind`, `metadata`, ...). Field sets
//! are read from and written to `metadata.managedFields` in the real `FieldsV1` encoding
//! (`f:<field>`, `k:{<keys>}`, `v:<value>`, `i:<index>`, `.`), and entries are sorted the
//! way the apiserver sorts them (`Apply` before `Update`, then by time, manager,
//! apiVersion, subresource).
//!
//! Schema knowledge comes from a CRD's `openAPIV3Schema` (`properties`, `items`,
//! `additionalProperties`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//! `x-kubernetes-map-type`, `x-kubernetes-preserve-unknown-fields`). Without a schema
//! (built-in kinds) objects are granular maps and lists are atomic. In every case
//! `metadata` follows `ObjectMeta`: `labels`/`annotations` are granular string maps,
//! `finalizers` is a set, `ownerReferences` is a map-list keyed by `uid`, and the
//! server-owned fields (`uid`, `resourceVersion`, `generation`, `creationTimestamp`,
//! `deletionTimestamp`, `deletionGracePeriodSeconds`, `managedFields`, `selfLink`) are
//! neither merged from an applied configuration nor tracked. `apiVersion`, `kind`,
//! `metadata.name` and `metadata.namespace` are merged but never owned.
//!
//! Not modelled: conversion between API versions (every entry is compared in the
//! request's version), the cap of 10 `Update` entries ("ancient-changes" bucket),
//! unions/discriminators, and the different reset-field sets of individual built-in
//! strategies (see [`ApplyRequest::status_subresource`]).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

/// Annotation written by client-side `kubectl apply`.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Metadata fields set by the server: never merged from an applied config, never tracked.
const SERVER_META: [&str; 9] = [
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "clusterName",
];

/// Metadata fields that are merged but never owned.
const UNOWNED_META: [&str; 2] = ["name", "namespace"];

const APPLY: &str = "Apply";
const UPDATE: &str = "Update";

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

/// One field that an apply would take from another manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name (`managedFields[].manager`).
    pub manager: String,
    /// The other entry's operation, `"Apply"` or `"Update"`.
    pub operation: String,
    /// The other entry's apiVersion.
    pub api_version: String,
    /// The other entry's subresource, if it has one.
    pub subresource: Option<String>,
    /// The contested field in the apiserver's path syntax, e.g. `.spec.region` or
    /// `.spec.containers[name="x"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as the apiserver prints it: `"kubectl"` for an applier,
    /// `"kubectl-client-side-apply" using apps/v1` for an updater, with
    /// ` with subresource "status"` after the quoted name when the entry has one.
    pub fn manager_description(&self) -> String {
        let mut out = quote(&self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(" with subresource ");
            out.push_str(&quote(sub));
        }
        if self.operation == UPDATE {
            out.push_str(" using ");
            out.push_str(&self.api_version);
        }
        out
    }

    /// The `message` of this conflict's `StatusCause` (`type: FieldManagerConflict`,
    /// `field` = [`Conflict::field`]): `conflict with "x" using v1`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }

    /// The manager identifier the apiserver sorts by when it prints several conflicts.
    fn identifier(&self) -> String {
        let mut id = format!(
            "{{\"manager\":{},\"operation\":{}",
            quote(&self.manager),
            quote(&self.operation)
        );
        if self.operation == UPDATE {
            id.push_str(&format!(",\"apiVersion\":{}", quote(&self.api_version)));
        }
        if let Some(sub) = &self.subresource {
            id.push_str(&format!(",\"subresource\":{}", quote(sub)));
        }
        id.push('}');
        id
    }
}

/// The conflicts that made an apply fail (HTTP 409, reason `Conflict`).
///
/// `Display` produces the apiserver's message byte for byte:
/// `Apply failed with 1 conflict: conflict with "m" using v1: .spec.x`, or for several
/// `Apply failed with N conflicts: conflicts with "a":\n- .spec.x\n- .spec.y\nconflicts with ...`
/// (managers sorted by their identifier, fields in field-set order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

impl fmt::Display for Conflicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.0.as_slice() {
            return write!(
                f,
                "Apply failed with 1 conflict: conflict with {}: {}",
                only.manager_description(),
                only.field
            );
        }
        let mut by_manager: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
        for c in &self.0 {
            by_manager
                .entry(c.identifier())
                .or_insert_with(|| (c.manager_description(), Vec::new()))
                .1
                .push(&c.field);
        }
        let mut lines = Vec::new();
        for (description, fields) in by_manager.values() {
            lines.push(format!("conflicts with {description}:"));
            lines.extend(fields.iter().map(|p| format!("- {p}")));
        }
        write!(
            f,
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }
}

impl std::error::Error for Conflicts {}

/// Why [`apply`] refused a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// Fields owned by other managers would change: HTTP 409 `Conflict`; retry with force.
    Conflicts(Conflicts),
    /// The request itself is wrong (wrong apiVersion/kind, `metadata.managedFields` set,
    /// `metadata.name` missing): HTTP 400 `BadRequest`, message as the apiserver's.
    BadRequest(String),
    /// The applied configuration does not fit the schema (a map-list item without its
    /// key, duplicate keys in a map-list or set) or the live managedFields cannot be
    /// decoded: HTTP 422 `Invalid` is the closest status.
    Invalid(String),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Conflicts(c) => c.fmt(f),
            ApplyError::BadRequest(m) | ApplyError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ApplyError {}

impl From<Conflicts> for ApplyError {
    fn from(c: Conflicts) -> Self {
        ApplyError::Conflicts(c)
    }
}

/// A server-side apply request.
#[derive(Clone, Copy, Debug)]
pub struct ApplyRequest<'a> {
    /// The stored object, `None` when the apply creates it.
    pub live: Option<&'a Value>,
    /// The applied configuration as sent by the client (YAML already turned into JSON).
    pub applied: &'a Value,
    /// `fieldManager` of the request.
    pub manager: &'a str,
    /// `force=true` of the request.
    pub force: bool,
    /// The CRD's `openAPIV3Schema`; `None` for built-in kinds.
    pub schema: Option<&'a Value>,
    /// The request's `group/version` (or `v1` for core); the applied config must match it.
    pub api_version: &'a str,
    /// RFC 3339 time (`2026-11-29T14:00:00Z`) written into entries that change.
    pub now: &'a str,
    /// `Some("status")` for `.../status`; `None` for the main resource.
    pub subresource: Option<&'a str>,
    /// Whether the kind has a status subresource. When true a main-resource apply
    /// neither merges nor tracks `.status`; a status-subresource apply (always) merges and
    /// tracks only `.status`.
    pub status_subresource: bool,
}

/// A non-apply write (create, `PUT`, merge / JSON / strategic-merge patch).
#[derive(Clone, Copy, Debug)]
pub struct UpdateRequest<'a> {
    /// The stored object before the write, `None` for a create.
    pub old: Option<&'a Value>,
    /// The object the write produced (after patching / defaulting), possibly carrying
    /// `metadata.managedFields` as the client left them.
    pub new: &'a Value,
    /// `fieldManager` of the request (or the client's user-agent derived name).
    pub manager: &'a str,
    /// The CRD's `openAPIV3Schema`; `None` for built-in kinds.
    pub schema: Option<&'a Value>,
    /// The request's `group/version`.
    pub api_version: &'a str,
    /// RFC 3339 time written into the writer's entry when it changes.
    pub now: &'a str,
    /// `Some("status")` for `.../status`; `None` for the main resource.
    pub subresource: Option<&'a str>,
    /// Whether the kind has a status subresource (see [`ApplyRequest::status_subresource`]).
    pub status_subresource: bool,
}

/// Server-side apply.
///
/// Guarantees, as kube-apiserver:
/// * the applied config's field set becomes exactly the `manager`'s `Apply` entry (one per
///   manager and subresource; its apiVersion becomes the request's);
/// * the applied values are merged into the live object (granular maps key by key,
///   map-lists item by key, sets as a union, atomic lists / maps and scalars replaced);
/// * fields in the manager's previous `Apply` set that it no longer applies are removed
///   from the object unless some manager (including this apply) still owns them or,
///   for a struct field, something beneath them;
/// * a field whose value changes and that another entry owns is a conflict, unless
///   `force`, in which case the other entries lose it; equal values are shared;
/// * for manager `kubectl`, conflicts on fields whose values still match the live
///   `last-applied-configuration` annotation are forced (client-side to server-side
///   upgrade), and an existing annotation is rewritten from the applied config;
/// * fields that disappear from the object are removed from every other entry; empty
///   entries are dropped; only the applier's entry gets `now` and only when the object
///   or its field set changed, so re-applying the same config returns the live object
///   unchanged (the caller can skip the write when the result equals the live object).
///
/// Returns the new object with `metadata.managedFields` set (removed when empty). The
/// caller still checks name/namespace against the URL, resourceVersion preconditions,
/// and for creates the kind, and sets server fields (uid, timestamps, generation).
pub fn apply(req: ApplyRequest<'_>) -> Result<Value, ApplyError> {
    validate_applied(&req)?;
    match apply_once(&req, req.force) {
        Err(ApplyOnceError::Conflicts(raw)) => {
            if req.manager == "kubectl"
                && let Some(allowed) = allowed_from_last_applied(&req)
            {
                let remaining: Vec<RawConflict> =
                    raw.into_iter().filter(|c| !allowed.has(&c.path)).collect();
                if remaining.is_empty() {
                    return apply_once(&req, true).map_err(ApplyOnceError::into_public);
                }
                return Err(ApplyOnceError::Conflicts(remaining).into_public());
            }
            Err(ApplyOnceError::Conflicts(raw).into_public())
        }
        other => other.map_err(ApplyOnceError::into_public),
    }
}

/// Records a non-apply write in `metadata.managedFields` and returns `new` with them.
///
/// Guarantees, as kube-apiserver:
/// * the base entries are `new`'s managedFields when the client sent a non-empty, valid
///   list (a client may rewrite them, as `kubectl` does when upgrading client-side apply),
///   otherwise `old`'s; status writes always use `old`'s; `[{}]` clears them;
/// * fields added or changed between `old` and `new` (newly created maps and list items
///   included, as `.`) join the `manager`'s `Update` entry for this apiVersion and
///   subresource and leave every other entry; removed fields leave every entry;
/// * on create every set field is owned by `manager`; an update of an object that has
///   no managedFields at all is not tracked (as the apiserver does);
/// * the writer's `time` becomes `now` only if the write changed a tracked field; empty
///   entries are dropped; `apiVersion`, `kind`, `metadata.name`/`namespace` and the
///   server-set metadata fields are never tracked;
/// * status writes track only `.status` (entry has `"subresource": "status"`), and
///   main-resource writes of kinds with a status subresource do not track `.status`.
///
/// Never fails: values that do not fit the schema (e.g. map-list items without keys in
/// the stored object) are treated as atomic.
pub fn record_update(req: UpdateRequest<'_>) -> Value {
    let filter = Filter::new(req.subresource, req.status_subresource);
    let subresource = normalize_sub(req.subresource);
    let ty = Ty::Root(req.schema);
    let mut out = req.new.clone();
    let base = if subresource.is_some() {
        decode_entries(req.old.and_then(managed_fields_of)).unwrap_or_default()
    } else {
        base_entries_for_update(req.old, req.new)
    };
    set_managed_fields(&mut out, None);
    if base.is_empty() && req.old.is_some() {
        return out;
    }
    let mut entries = base;

    let old_view = match req.old {
        Some(old) => view(old, filter),
        // A new typed built-in object starts with empty non-pointer structs.
        None if req.schema.is_none() => view(&empty_builtin(), filter),
        None => Value::Object(Map::new()),
    };
    let cmp = compare_values(&old_view, &view(&out, filter), ty);
    let mut taken = cmp.added.union(&cmp.modified);
    taken.remove_member(&["f:metadata".to_string()]);

    for e in &mut entries {
        e.set = e.set.difference(&taken).difference(&cmp.removed);
    }
    let key = (req.manager, UPDATE, req.api_version, subresource);
    match entries.iter_mut().find(|e| e.is(key)) {
        Some(e) => {
            e.set = e.set.union(&taken);
            if !taken.is_empty() {
                e.time = Some(req.now.to_string());
            }
        }
        None if !taken.is_empty() => entries.push(Entry {
            manager: req.manager.to_string(),
            operation: UPDATE.to_string(),
            api_version: req.api_version.to_string(),
            time: Some(req.now.to_string()),
            subresource: subresource.map(str::to_string),
            set: taken,
        }),
        None => {}
    }
    set_managed_fields(&mut out, encode_entries(entries));
    out
}

/// Checks that `obj.metadata.managedFields` (if present) is decodable: every entry has
/// operation `Apply`/`Update`, a non-empty apiVersion and `fieldsType: FieldsV1`.
/// Use it to reject client-supplied managedFields on create/update (HTTP 422).
pub fn validate_managed_fields(obj: &Value) -> Result<(), String> {
    decode_entries(managed_fields_of(obj)).map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Apply internals
// ---------------------------------------------------------------------------------------

struct RawConflict {
    manager: String,
    operation: String,
    api_version: String,
    subresource: Option<String>,
    path: Vec<String>,
}

enum ApplyOnceError {
    Conflicts(Vec<RawConflict>),
    Other(ApplyError),
}

impl ApplyOnceError {
    fn into_public(self) -> ApplyError {
        match self {
            ApplyOnceError::Other(e) => e,
            ApplyOnceError::Conflicts(raw) => ApplyError::Conflicts(Conflicts(
                raw.into_iter()
                    .map(|c| Conflict {
                        field: render_path(&c.path),
                        manager: c.manager,
                        operation: c.operation,
                        api_version: c.api_version,
                        subresource: c.subresource,
                    })
                    .collect(),
            )),
        }
    }
}

fn validate_applied(req: &ApplyRequest<'_>) -> Result<(), ApplyError> {
    let bad = |m: String| Err(ApplyError::BadRequest(m));
    let Some(obj) = req.applied.as_object() else {
        return bad("apply patch must be a JSON object".to_string());
    };
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let live_kind = req.live.and_then(|l| l.get("kind")).and_then(Value::as_str);
    if kind.is_empty() || api_version != req.api_version || live_kind.is_some_and(|k| k != kind) {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        return bad(format!(
            "invalid object type: {group}/{version}, Kind={kind}"
        ));
    }
    let meta = obj.get("metadata");
    if meta
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|v| !v.is_null())
    {
        return bad("metadata.managedFields must be nil".to_string());
    }
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
    if name.is_none_or(str::is_empty) {
        return bad("metadata.name: Required value: name is required".to_string());
    }
    Ok(())
}

fn apply_once(req: &ApplyRequest<'_>, force: bool) -> Result<Value, ApplyOnceError> {
    let filter = Filter::new(req.subresource, req.status_subresource);
    let subresource = normalize_sub(req.subresource);
    let ty = Ty::Root(req.schema);

    let mut entries = match req.live {
        Some(live) => decode_entries(managed_fields_of(live)).map_err(|e| {
            ApplyOnceError::Other(ApplyError::Invalid(format!(
                "failed to decode managed fields: {e}"
            )))
        })?,
        None => Vec::new(),
    };
    let mut live = req
        .live
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    set_managed_fields(&mut live, None);

    let applied = clean_applied(req.applied, filter);
    let mut applied_set = FieldSet::default();
    to_set(
        &view(&applied, filter),
        ty,
        &mut Vec::new(),
        &mut applied_set,
    )
    .map_err(|e| ApplyOnceError::Other(ApplyError::Invalid(e)))?;
    let mut new_obj = if req.live.is_some() {
        merge(Some(&live), &applied, ty)
    } else {
        applied
    };

    let key = (req.manager, APPLY, req.api_version, subresource);
    let (idx, previous) = match entries.iter().position(|e| e.is(key)) {
        Some(i) => (i, Some(std::mem::take(&mut entries[i].set))),
        None => {
            entries.push(Entry {
                manager: req.manager.to_string(),
                operation: APPLY.to_string(),
                api_version: req.api_version.to_string(),
                time: None,
                subresource: subresource.map(str::to_string),
                set: FieldSet::default(),
            });
            (entries.len() - 1, None)
        }
    };
    entries[idx].set = applied_set.clone();
    entries[idx].api_version = req.api_version.to_string();

    // Prune what the applier owned before and nobody owns now.
    if let Some(last) = previous.as_ref().filter(|s| !s.is_empty()) {
        let mut managed = FieldSet::default();
        // The applied config always carries metadata.name, so `.metadata` is never pruned.
        managed.insert(&["f:metadata".to_string(), "f:name".to_string()]);
        for e in &entries {
            managed = managed.union(&e.set);
        }
        let to_remove = ensure_named(last, ty).difference(&ensure_named(&managed, ty));
        remove_items(&mut new_obj, &to_remove, ty);
    }

    let cmp = compare_values(&view(&live, filter), &view(&new_obj, filter), ty);
    let mut changed = cmp.added.union(&cmp.modified);
    changed.remove_member(&["f:metadata".to_string()]);
    let mut conflicts = Vec::new();
    let mut lost = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if i == idx {
            continue;
        }
        let contested = e.set.intersection(&changed);
        if contested.is_empty() {
            continue;
        }
        for path in contested.paths() {
            conflicts.push(RawConflict {
                manager: e.manager.clone(),
                operation: e.operation.clone(),
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                path,
            });
        }
        lost.push((i, contested));
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyOnceError::Conflicts(conflicts));
    }
    for (i, contested) in lost {
        entries[i].set = entries[i].set.difference(&contested);
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if i != idx {
            e.set = e.set.difference(&cmp.removed);
        }
    }

    let object_changed = req.live.is_none() || !json_eq(&live, &new_obj);
    if object_changed || previous.as_ref() != Some(&applied_set) {
        entries[idx].time = Some(req.now.to_string());
    }

    if req.manager == "kubectl" {
        sync_last_applied(&mut new_obj, req.applied);
    }
    set_managed_fields(&mut new_obj, encode_entries(entries));
    Ok(new_obj)
}

/// Fields of the live `last-applied-configuration` whose values still match the live
/// object: conflicts on them are allowed for `kubectl` (client-side apply upgrade).
fn allowed_from_last_applied(req: &ApplyRequest<'_>) -> Option<FieldSet> {
    let live = req.live?;
    let text = live
        .get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    if last.get("apiVersion").and_then(Value::as_str) != Some(req.api_version) {
        return None;
    }
    let filter = Filter::new(req.subresource, req.status_subresource);
    let ty = Ty::Root(req.schema);
    let last_view = view(&last, filter);
    let mut set = FieldSet::default();
    to_set(&last_view, ty, &mut Vec::new(), &mut set).ok()?;
    let cmp = compare_values(&last_view, &view(live, filter), ty);
    Some(
        set.difference(&cmp.modified)
            .difference(&cmp.added)
            .difference(&cmp.removed),
    )
}

/// Rewrites an existing last-applied annotation from the applied configuration, as the
/// apiserver does for `kubectl apply --server-side`.
fn sync_last_applied(obj: &mut Value, applied: &Value) {
    let has = obj
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .is_some();
    if !has {
        return;
    }
    let mut config = applied.clone();
    if let Some(Value::Object(a)) = config
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        a.retain(|k, _| k != LAST_APPLIED_ANNOTATION);
    }
    let mut text = String::new();
    write_json(&config, true, &mut text);
    text.push('\n');
    if let Some(Value::Object(a)) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
    {
        a.insert(LAST_APPLIED_ANNOTATION.to_string(), Value::String(text));
    }
}

// ---------------------------------------------------------------------------------------
// Views and filters
// ---------------------------------------------------------------------------------------

/// Which top-level part of the object a write may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    All,
    NoStatus,
    OnlyStatus,
}

impl Filter {
    fn new(subresource: Option<&str>, status_subresource: bool) -> Filter {
        match normalize_sub(subresource) {
            Some("status") => Filter::OnlyStatus,
            None if status_subresource => Filter::NoStatus,
            _ => Filter::All,
        }
    }
}

fn normalize_sub(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// The part of an object whose fields are tracked under `filter`.
fn view(obj: &Value, filter: Filter) -> Value {
    let mut m = obj.as_object().cloned().unwrap_or_default();
    m.retain(|k, _| k != "apiVersion" && k != "kind");
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        meta.retain(|k, _| {
            !SERVER_META.contains(&k.as_str()) && !UNOWNED_META.contains(&k.as_str())
        });
    }
    match filter {
        Filter::All => {}
        Filter::NoStatus => m.retain(|k, _| k != "status"),
        Filter::OnlyStatus => m.retain(|k, _| k == "status"),
    }
    Value::Object(m)
}

/// The applied configuration without what an apply may not set.
fn clean_applied(applied: &Value, filter: Filter) -> Value {
    let mut m = applied.as_object().cloned().unwrap_or_default();
    if let Some(Value::Object(meta)) = m.get_mut("metadata") {
        meta.retain(|k, _| !SERVER_META.contains(&k.as_str()));
    }
    match filter {
        Filter::All => {}
        Filter::NoStatus => m.retain(|k, _| k != "status"),
        Filter::OnlyStatus => m.retain(|k, _| k == "status"),
    }
    Value::Object(m)
}

fn empty_builtin() -> Value {
    let mut m = Map::new();
    m.insert("spec".to_string(), Value::Object(Map::new()));
    m.insert("status".to_string(), Value::Object(Map::new()));
    Value::Object(m)
}

fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata")?.get("managedFields")
}

fn set_managed_fields(obj: &mut Value, fields: Option<Value>) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    match fields {
        Some(f) => {
            let meta = root
                .entry("metadata")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(meta) = meta {
                meta.insert("managedFields".to_string(), f);
            }
        }
        None => {
            if let Some(Value::Object(meta)) = root.get_mut("metadata") {
                meta.retain(|k, _| k != "managedFields");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// managedFields entries
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    /// Same manager identifier: Apply entries ignore the apiVersion.
    fn is(&self, (manager, operation, api_version, sub): (&str, &str, &str, Option<&str>)) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == sub
            && (operation == APPLY || self.api_version == api_version)
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert("operation".into(), Value::String(self.operation.clone()));
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.set.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        Value::Object(m)
    }
}

fn decode_entries(v: Option<&Value>) -> Result<Vec<Entry>, String> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("managedFields must be a list".to_string()),
    };
    let mut out: Vec<Entry> = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let operation = s("operation");
        if operation != APPLY && operation != UPDATE {
            return Err("operation must be `Apply` or `Update`".to_string());
        }
        let api_version = s("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".to_string());
        }
        match s("fieldsType").as_str() {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => {
                return Err(format!(
                    "invalid fieldsType {other:?} in managed fields entry {i}"
                ));
            }
        }
        let time = Some(s("time")).filter(|t| !t.is_empty());
        let subresource = Some(s("subresource")).filter(|t| !t.is_empty());
        let entry = Entry {
            manager: s("manager"),
            operation,
            api_version,
            time,
            subresource,
            set: e
                .get("fieldsV1")
                .map(FieldSet::from_fields_v1)
                .unwrap_or_default(),
        };
        let key = (
            entry.manager.as_str(),
            entry.operation.as_str(),
            entry.api_version.as_str(),
            entry.subresource.as_deref(),
        );
        match out.iter().position(|x| x.is(key)) {
            Some(j) => out[j] = entry,
            None => out.push(entry),
        }
    }
    Ok(out)
}

/// Base entries of a main-resource update: the client's if it sent valid non-empty ones,
/// none if it sent `[{}]`, else the stored ones.
fn base_entries_for_update(old: Option<&Value>, new: &Value) -> Vec<Entry> {
    if let Some(Value::Array(list)) = managed_fields_of(new) {
        if list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty) {
            return Vec::new();
        }
        if let Ok(entries) = decode_entries(managed_fields_of(new))
            && !entries.is_empty()
        {
            return entries;
        }
    }
    decode_entries(old.and_then(managed_fields_of)).unwrap_or_default()
}

/// Drops empty entries and sorts like the apiserver; `None` when nothing is left.
fn encode_entries(mut entries: Vec<Entry>) -> Option<Value> {
    entries.retain(|e| !e.set.is_empty());
    if entries.is_empty() {
        return None;
    }
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| {
                let t = |e: &Entry| e.time.clone().unwrap_or_default();
                t(a).cmp(&t(b))
            })
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    Some(Value::Array(entries.iter().map(Entry::to_json).collect()))
}

// ---------------------------------------------------------------------------------------
// Field sets
// ---------------------------------------------------------------------------------------

/// A set of field paths. Keys are FieldsV1 path elements (`f:x`, `k:{..}`, `v:..`, `i:N`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FieldSet {
    children: BTreeMap<String, Node>,
}

/// `member`: the path ending here is in the set; `set`: paths below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Node {
    member: bool,
    set: FieldSet,
}

impl Node {
    fn is_empty(&self) -> bool {
        !self.member && self.set.is_empty()
    }
}

impl FieldSet {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    fn insert(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.children.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.set.insert(rest);
        }
    }

    fn has(&self, path: &[String]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        self.children.get(first).is_some_and(|n| {
            if rest.is_empty() {
                n.member
            } else {
                n.set.has(rest)
            }
        })
    }

    fn remove_member(&mut self, path: &[String]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if let Some(node) = self.children.get_mut(first) {
            if rest.is_empty() {
                node.member = false;
            } else {
                node.set.remove_member(rest);
            }
            if node.is_empty() {
                self.children.remove(first);
            }
        }
    }

    fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        for (k, n) in &other.children {
            let e = out.children.entry(k.clone()).or_default();
            e.member |= n.member;
            e.set = e.set.union(&n.set);
        }
        out
    }

    /// Removes the members of `other` (exact paths; descendants stay).
    fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::default();
        for (k, n) in &self.children {
            let node = match other.children.get(k) {
                None => n.clone(),
                Some(o) => Node {
                    member: n.member && !o.member,
                    set: n.set.difference(&o.set),
                },
            };
            if !node.is_empty() {
                out.children.insert(k.clone(), node);
            }
        }
        out
    }

    fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::default();
        for (k, n) in &self.children {
            if let Some(o) = other.children.get(k) {
                let node = Node {
                    member: n.member && o.member,
                    set: n.set.intersection(&o.set),
                };
                if !node.is_empty() {
                    out.children.insert(k.clone(), node);
                }
            }
        }
        out
    }

    /// Member paths in structured-merge-diff order: at each level members first, then
    /// subtrees; fields before keys before values before indexes.
    fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut keys: Vec<&String> = self.children.keys().collect();
        keys.sort_by(|a, b| pe_cmp(a, b));
        for k in &keys {
            if self.children[*k].member {
                prefix.push((*k).clone());
                out.push(prefix.clone());
                prefix.pop();
            }
        }
        for k in &keys {
            let n = &self.children[*k];
            if !n.set.is_empty() {
                prefix.push((*k).clone());
                n.set.collect(prefix, out);
                prefix.pop();
            }
        }
    }

    fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        for (k, n) in &self.children {
            let mut child = match n.set.to_fields_v1() {
                Value::Object(c) => c,
                _ => Map::new(),
            };
            if n.member && !child.is_empty() {
                let mut with_dot = Map::new();
                with_dot.insert(".".to_string(), Value::Object(Map::new()));
                with_dot.extend(child);
                child = with_dot;
            }
            m.insert(k.clone(), Value::Object(child));
        }
        Value::Object(m)
    }

    fn from_fields_v1(v: &Value) -> FieldSet {
        let mut out = FieldSet::default();
        let Some(m) = v.as_object() else {
            return out;
        };
        for (k, child) in m {
            if k == "." {
                continue;
            }
            let member = child
                .as_object()
                .is_none_or(|c| c.is_empty() || c.contains_key("."));
            let node = Node {
                member,
                set: FieldSet::from_fields_v1(child),
            };
            if !node.is_empty() {
                out.children.insert(canonical_pe(k), node);
            }
        }
        out
    }
}

/// Normalises the JSON inside `k:` / `v:` elements (sorted keys, compact).
fn canonical_pe(pe: &str) -> String {
    for prefix in ["k:", "v:"] {
        if let Some(rest) = pe.strip_prefix(prefix)
            && let Ok(v) = serde_json::from_str::<Value>(rest)
        {
            let mut s = prefix.to_string();
            write_json(&v, false, &mut s);
            return s;
        }
    }
    pe.to_string()
}

fn pe_rank(pe: &str) -> u8 {
    match pe.get(..2) {
        Some("f:") => 0,
        Some("k:") => 1,
        Some("v:") => 2,
        Some("i:") => 3,
        _ => 4,
    }
}

fn pe_cmp(a: &str, b: &str) -> Ordering {
    pe_rank(a).cmp(&pe_rank(b)).then_with(|| {
        match (
            a.strip_prefix("i:").and_then(|n| n.parse::<u64>().ok()),
            b.strip_prefix("i:").and_then(|n| n.parse::<u64>().ok()),
        ) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => a.cmp(b),
        }
    })
}

/// `.spec.containers[name="x"].image`, `.metadata.finalizers[="f"]`, `.spec.list[0]`.
fn render_path(path: &[String]) -> String {
    path.iter().map(|pe| render_pe(pe)).collect()
}

fn render_pe(pe: &str) -> String {
    if let Some(name) = pe.strip_prefix("f:") {
        return format!(".{name}");
    }
    if let Some(index) = pe.strip_prefix("i:") {
        return format!("[{index}]");
    }
    if let Some(rest) = pe.strip_prefix("k:")
        && let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(rest)
    {
        let mut names: Vec<&String> = keys.keys().collect();
        names.sort();
        let parts: Vec<String> = names
            .iter()
            .map(|k| format!("{k}={}", go_value_string(&keys[k.as_str()])))
            .collect();
        return format!("[{}]", parts.join(","));
    }
    if let Some(rest) = pe.strip_prefix("v:")
        && let Ok(v) = serde_json::from_str::<Value>(rest)
    {
        return format!("[={}]", go_value_string(&v));
    }
    pe.to_string()
}

/// structured-merge-diff's `value.ToString`.
fn go_value_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_value_string).collect::<Vec<_>>().join(",")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            keys.iter()
                .map(|k| format!("{k}={}", go_value_string(&m[k.as_str()])))
                .collect()
        }
    }
}

fn quote(s: &str) -> String {
    let mut out = String::new();
    write_json_string(s, false, &mut out);
    out
}

/// Compact JSON with sorted keys; `escape_html` escapes `<`, `>`, `&` like Go's encoder.
fn write_json(v: &Value, escape_html: bool, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_json_string(s, escape_html, out),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, escape_html, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, escape_html, out);
                out.push(':');
                write_json(&m[k.as_str()], escape_html, out);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, escape_html: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if escape_html => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------
// Types (schema knowledge)
// ---------------------------------------------------------------------------------------

/// What is known about the value at some path.
#[derive(Clone, Copy, Debug)]
enum Ty<'a> {
    /// The object itself, with the CRD schema if any.
    Root(Option<&'a Value>),
    /// A node of a CRD's OpenAPI v3 schema.
    Schema(&'a Value),
    /// Built-in kind without schema: granular maps of named fields, atomic lists.
    Builtin,
    /// Unknown / preserved fields: granular maps of map entries, atomic lists.
    Untyped,
    ObjectMeta,
    /// `labels` / `annotations`.
    StringMap,
    Finalizers,
    OwnerRefs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ListKind {
    Atomic,
    Set,
    Map(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Leaf,
    Map,
    List(ListKind),
}

impl<'a> Ty<'a> {
    /// The type of field `name` and whether it is a named (struct) field rather than a
    /// map entry. Map entries with children are owned as a whole too (`.`).
    fn field(self, name: &str) -> (Ty<'a>, bool) {
        match self {
            Ty::Root(schema) => match (name, schema) {
                ("metadata", _) => (Ty::ObjectMeta, true),
                (_, Some(s)) => Ty::Schema(s).field(name),
                (_, None) => (Ty::Builtin, true),
            },
            Ty::Schema(node) => {
                if let Some(p) = node.get("properties").and_then(|p| p.get(name)) {
                    return (Ty::Schema(p), true);
                }
                match node.get("additionalProperties") {
                    Some(ap @ Value::Object(_)) => (Ty::Schema(ap), false),
                    _ => (Ty::Untyped, false),
                }
            }
            Ty::Builtin => (Ty::Builtin, true),
            Ty::Untyped | Ty::StringMap | Ty::Finalizers => (Ty::Untyped, false),
            Ty::ObjectMeta => {
                let ty = match name {
                    "labels" | "annotations" => Ty::StringMap,
                    "finalizers" => Ty::Finalizers,
                    "ownerReferences" => Ty::OwnerRefs,
                    _ => Ty::Builtin,
                };
                (ty, true)
            }
            Ty::OwnerRefs => (Ty::Builtin, true),
        }
    }

    fn items(self) -> Ty<'a> {
        match self {
            Ty::Schema(node) => match node.get("items") {
                Some(items @ Value::Object(_)) => Ty::Schema(items),
                _ => Ty::Untyped,
            },
            Ty::OwnerRefs => Ty::Builtin,
            _ => Ty::Untyped,
        }
    }

    fn list_kind(self) -> ListKind {
        match self {
            Ty::Schema(node) => match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => ListKind::Set,
                Some("map") => ListKind::Map(
                    node.get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| {
                            keys.iter()
                                .filter_map(|k| k.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                _ => ListKind::Atomic,
            },
            Ty::Finalizers => ListKind::Set,
            Ty::OwnerRefs => ListKind::Map(vec!["uid".to_string()]),
            _ => ListKind::Atomic,
        }
    }

    fn map_atomic(self) -> bool {
        matches!(self, Ty::Schema(node)
            if node.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic"))
    }

    /// Schema default of a map-list key field (`self` is the item type).
    fn key_default(self, key: &str) -> Option<&'a Value> {
        match self {
            Ty::Schema(node) => node.get("properties")?.get(key)?.get("default"),
            _ => None,
        }
    }
}

fn kind_of(v: &Value, ty: Ty<'_>) -> Kind {
    match v {
        Value::Object(_) if !ty.map_atomic() => Kind::Map,
        Value::Array(_) => match ty.list_kind() {
            ListKind::Atomic => Kind::Leaf,
            k => Kind::List(k),
        },
        _ => Kind::Leaf,
    }
}

/// Path elements of the items of a set or map list; errors on items without keys,
/// non-scalar set items and duplicates.
fn list_pes(items: &[Value], ty: Ty<'_>, kind: &ListKind) -> Result<Vec<String>, String> {
    let item_ty = ty.items();
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut pe = String::new();
        match kind {
            ListKind::Set => {
                if item.is_object() || item.is_array() {
                    return Err(format!("element {i}: set items must be scalars"));
                }
                pe.push_str("v:");
                write_json(item, false, &mut pe);
            }
            ListKind::Map(keys) => {
                let Some(obj) = item.as_object() else {
                    return Err(format!(
                        "element {i}: associative list items must be objects"
                    ));
                };
                let mut key = Map::new();
                for k in keys {
                    let v = obj
                        .get(k)
                        .filter(|v| !v.is_null())
                        .or_else(|| item_ty.key_default(k))
                        .ok_or_else(|| {
                            format!(
                                "element {i}: associative list with keys has an element that omits key field {} (and doesn't have default value)",
                                quote(k)
                            )
                        })?;
                    key.insert(k.clone(), v.clone());
                }
                pe.push_str("k:");
                write_json(&Value::Object(key), false, &mut pe);
            }
            ListKind::Atomic => pe = format!("i:{i}"),
        }
        if !seen.insert(pe.clone()) {
            return Err(format!("duplicate entries for key {}", render_pe(&pe)));
        }
        out.push(pe);
    }
    Ok(out)
}

fn array_of(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

// ---------------------------------------------------------------------------------------
// Walks: field set of an applied config, comparison, merge, removal
// ---------------------------------------------------------------------------------------

/// structured-merge-diff `ToFieldSet`: leaves, list items (`.` included) and map entries.
fn to_set(v: &Value, ty: Ty<'_>, path: &mut Vec<String>, out: &mut FieldSet) -> Result<(), String> {
    match kind_of(v, ty) {
        Kind::Leaf => out.insert(path),
        Kind::Map => {
            for (k, child) in v.as_object().into_iter().flatten() {
                let (child_ty, named) = ty.field(k);
                path.push(format!("f:{k}"));
                to_set(child, child_ty, path, out)?;
                if !named {
                    out.insert(path);
                }
                path.pop();
            }
        }
        Kind::List(kind) => {
            let items = array_of(Some(v));
            let pes =
                list_pes(items, ty, &kind).map_err(|e| format!("{}: {e}", render_path(path)))?;
            for (pe, item) in pes.into_iter().zip(items) {
                path.push(pe);
                to_set(item, ty.items(), path, out)?;
                out.insert(path);
                path.pop();
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

fn compare_values(old: &Value, new: &Value, ty: Ty<'_>) -> Comparison {
    let mut c = Comparison::default();
    compare(Some(old), Some(new), ty, &mut Vec::new(), &mut c);
    c
}

fn compare_leaf(l: Option<&Value>, r: Option<&Value>, path: &[String], c: &mut Comparison) {
    match (l, r) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(a), Some(b)) if !json_eq(a, b) => c.modified.insert(path),
        _ => {}
    }
}

fn compare_container(l: Option<&Value>, r: Option<&Value>, path: &[String], c: &mut Comparison) {
    if l.is_none() {
        c.added.insert(path);
    } else if r.is_none() {
        c.removed.insert(path);
    }
}

/// structured-merge-diff `Compare`: changed leaves, plus containers (maps, set/map lists,
/// list items) that appear or disappear as a whole.
fn compare(
    l: Option<&Value>,
    r: Option<&Value>,
    ty: Ty<'_>,
    path: &mut Vec<String>,
    c: &mut Comparison,
) {
    let kind = match (l.map(|v| kind_of(v, ty)), r.map(|v| kind_of(v, ty))) {
        (None, None) => return,
        (Some(a), Some(b)) if a != b => {
            compare(l, None, ty, path, c);
            compare(None, r, ty, path, c);
            return;
        }
        (Some(a), _) => a,
        (None, Some(b)) => b,
    };
    match kind {
        Kind::Leaf => compare_leaf(l, r, path, c),
        Kind::Map => {
            let empty = Map::new();
            let lm = l.and_then(Value::as_object).unwrap_or(&empty);
            let rm = r.and_then(Value::as_object).unwrap_or(&empty);
            if lm.is_empty() && rm.is_empty() {
                return compare_leaf(l, r, path, c);
            }
            for (k, lv) in lm {
                path.push(format!("f:{k}"));
                compare(Some(lv), rm.get(k), ty.field(k).0, path, c);
                path.pop();
            }
            for (k, rv) in rm.iter().filter(|(k, _)| !lm.contains_key(*k)) {
                path.push(format!("f:{k}"));
                compare(None, Some(rv), ty.field(k).0, path, c);
                path.pop();
            }
            compare_container(l, r, path, c);
        }
        Kind::List(list_kind) => {
            let (la, ra) = (array_of(l), array_of(r));
            let (Ok(lp), Ok(rp)) = (list_pes(la, ty, &list_kind), list_pes(ra, ty, &list_kind))
            else {
                return compare_leaf(l, r, path, c);
            };
            if la.is_empty() && ra.is_empty() {
                return compare_leaf(l, r, path, c);
            }
            let lmap: HashMap<&str, &Value> = lp.iter().map(String::as_str).zip(la).collect();
            let rmap: HashMap<&str, &Value> = rp.iter().map(String::as_str).zip(ra).collect();
            let item_ty = ty.items();
            for (pe, lv) in lp.iter().zip(la) {
                path.push(pe.clone());
                compare(Some(lv), rmap.get(pe.as_str()).copied(), item_ty, path, c);
                path.pop();
            }
            for (pe, rv) in rp.iter().zip(ra) {
                if !lmap.contains_key(pe.as_str()) {
                    path.push(pe.clone());
                    compare(None, Some(rv), item_ty, path, c);
                    path.pop();
                }
            }
            compare_container(l, r, path, c);
        }
    }
}

/// structured-merge-diff `Merge` with the applied value winning on leaves. List order:
/// live items keep their place, applied items come in applied order, new ones after.
fn merge(l: Option<&Value>, r: &Value, ty: Ty<'_>) -> Value {
    let Some(l) = l else {
        return r.clone();
    };
    match (kind_of(l, ty), kind_of(r, ty), l, r) {
        (Kind::Map, Kind::Map, Value::Object(lm), Value::Object(rm)) => {
            let mut out = Map::new();
            for (k, lv) in lm {
                let v = match rm.get(k) {
                    Some(rv) => merge(Some(lv), rv, ty.field(k).0),
                    None => lv.clone(),
                };
                out.insert(k.clone(), v);
            }
            for (k, rv) in rm.iter().filter(|(k, _)| !lm.contains_key(*k)) {
                out.insert(k.clone(), rv.clone());
            }
            Value::Object(out)
        }
        (Kind::List(kind), Kind::List(_), Value::Array(la), Value::Array(ra)) => {
            merge_list(la, ra, ty, &kind)
        }
        _ => r.clone(),
    }
}

fn merge_list(la: &[Value], ra: &[Value], ty: Ty<'_>, kind: &ListKind) -> Value {
    let (Ok(lp), Ok(rp)) = (list_pes(la, ty, kind), list_pes(ra, ty, kind)) else {
        return Value::Array(ra.to_vec());
    };
    let item_ty = ty.items();
    let lmap: HashMap<&str, &Value> = lp.iter().map(String::as_str).zip(la).collect();
    let rset: HashSet<&str> = rp.iter().map(String::as_str).collect();
    let mut shared = rp
        .iter()
        .map(String::as_str)
        .filter(|pe| lmap.contains_key(pe));
    let mut next_shared = shared.next();
    let mut merged: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(la.len().max(ra.len()));
    let (mut li, mut ri) = (0, 0);
    while li < lp.len() || ri < rp.len() {
        if li < lp.len() && ri < rp.len() {
            let pe = lp[li].as_str();
            if pe == rp[ri] {
                out.push(merge(Some(&la[li]), &ra[ri], item_ty));
                merged.insert(pe);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if rset.contains(pe) && next_shared.is_some_and(|s| s != pe) {
                // A shared item that applied order places later.
                li += 1;
                continue;
            }
        }
        if li < lp.len() {
            let pe = lp[li].as_str();
            if !rset.contains(pe) {
                out.push(la[li].clone());
                li += 1;
                continue;
            }
            if merged.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rp.len() {
            let pe = rp[ri].as_str();
            merged.insert(pe);
            out.push(merge(lmap.get(pe).copied(), &ra[ri], item_ty));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    Value::Array(out)
}

/// Removes every member of `set` from `v`; containers emptied by the removal go too.
fn remove_items(v: &mut Value, set: &FieldSet, ty: Ty<'_>) {
    match (kind_of(v, ty), v) {
        (Kind::Map, Value::Object(m)) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let Some(node) = set.children.get(&format!("f:{k}")) else {
                    continue;
                };
                let drop = node.member
                    || m.get_mut(&k).is_some_and(|child| {
                        let before = is_nonempty_container(child);
                        remove_items(child, &node.set, ty.field(&k).0);
                        before && !is_nonempty_container(child)
                    });
                if drop {
                    m.retain(|key, _| *key != k);
                }
            }
        }
        (Kind::List(kind), Value::Array(items)) => {
            let Ok(pes) = list_pes(items, ty, &kind) else {
                return;
            };
            let item_ty = ty.items();
            let old = std::mem::take(items);
            for (pe, mut item) in pes.iter().zip(old) {
                match set.children.get(pe) {
                    Some(n) if n.member => continue,
                    Some(n) => remove_items(&mut item, &n.set, item_ty),
                    None => {}
                }
                items.push(item);
            }
        }
        _ => {}
    }
}

fn is_nonempty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

/// structured-merge-diff `EnsureNamedFieldsAreMembers`: a struct field with anything
/// beneath it counts as a member (map entries and list items already are).
fn ensure_named(set: &FieldSet, ty: Ty<'_>) -> FieldSet {
    let mut out = FieldSet::default();
    for (k, n) in &set.children {
        let (child_ty, named) = match k.strip_prefix("f:") {
            Some(name) => ty.field(name),
            None => (ty.items(), false),
        };
        let sub = ensure_named(&n.set, child_ty);
        let node = Node {
            member: n.member || (named && !sub.is_empty()),
            set: sub,
        };
        out.children.insert(k.clone(), node);
    }
    out
}

/// JSON equality where `1` equals `1.0`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || ((x.is_f64() || y.is_f64()) && x.as_f64() == y.as_f64())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AV: &str = "hipaa.dev/v1alpha1";
    const T0: &str = "2026-11-29T14:00:00Z";
    const T1: &str = "2026-11-29T14:01:00Z";
    const T2: &str = "2026-11-29T14:02:00Z";
    const T3: &str = "2026-11-29T14:03:00Z";

    fn schema() -> Value {
        let conditions = json!({
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
            "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}
        });
        json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {"type": "object", "properties": {
                    "region": {"type": "string"},
                    "replicas": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "zones": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "containers": {
                        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string"}, "image": {"type": "string"}, "port": {"type": "integer"}
                        }}
                    },
                    "ports": {
                        "type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                        "items": {"type": "object", "properties": {
                            "port": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}
                        }}
                    },
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                        "properties": {"app": {"type": "string"}, "tier": {"type": "string"}}},
                    "config": {"type": "object", "additionalProperties": {"type": "string"}},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }},
                "status": {"type": "object", "properties": {
                    "phase": {"type": "string"}, "conditions": conditions
                }}
            }
        })
    }

    /// A Tenant custom resource with the given spec (applied-config shaped).
    fn cr(spec: Value) -> Value {
        json!({"apiVersion": AV, "kind": "Tenant",
               "metadata": {"name": "t1", "namespace": "ns"}, "spec": spec})
    }

    fn apply_req<'a>(
        live: Option<&'a Value>,
        applied: &'a Value,
        manager: &'a str,
        force: bool,
        schema: &'a Value,
        now: &'a str,
    ) -> ApplyRequest<'a> {
        ApplyRequest {
            live,
            applied,
            manager,
            force,
            schema: Some(schema),
            api_version: AV,
            now,
            subresource: None,
            status_subresource: true,
        }
    }

    fn ssa(
        live: Option<&Value>,
        applied: &Value,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<Value, ApplyError> {
        let s = schema();
        apply(apply_req(live, applied, manager, force, &s, now))
    }

    fn update_req<'a>(
        old: Option<&'a Value>,
        new: &'a Value,
        manager: &'a str,
        schema: &'a Value,
        now: &'a str,
    ) -> UpdateRequest<'a> {
        UpdateRequest {
            old,
            new,
            manager,
            schema: Some(schema),
            api_version: AV,
            now,
            subresource: None,
            status_subresource: true,
        }
    }

    fn upd(old: Option<&Value>, new: &Value, manager: &str, now: &str) -> Value {
        let s = schema();
        record_update(update_req(old, new, manager, &s, now))
    }

    fn entry<'a>(obj: &'a Value, manager: &str, op: &str) -> Option<&'a Value> {
        obj["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager && e["operation"] == op)
    }

    fn fields(obj: &Value, manager: &str, op: &str) -> Value {
        entry(obj, manager, op).map_or(Value::Null, |e| e["fieldsV1"].clone())
    }

    fn conflicts(r: Result<Value, ApplyError>) -> Conflicts {
        match r {
            Err(ApplyError::Conflicts(c)) => c,
            other => panic!("expected conflicts, got {other:?}"),
        }
    }

    /// One write in a scenario.
    enum Step {
        /// Server-side apply of `cr(spec)` by a manager.
        Apply(&'static str, Value),
        /// Forced server-side apply.
        Force(&'static str, Value),
        /// Non-apply write (create or PUT) that sets the whole spec.
        Update(&'static str, Value),
    }

    fn run(steps: &[Step]) -> Result<Value, ApplyError> {
        let times = [T0, T1, T2, T3, T3, T3];
        let mut cur: Option<Value> = None;
        for (i, step) in steps.iter().enumerate() {
            let now = times[i];
            let next = match step {
                Step::Apply(m, spec) => ssa(cur.as_ref(), &cr(spec.clone()), m, false, now)?,
                Step::Force(m, spec) => ssa(cur.as_ref(), &cr(spec.clone()), m, true, now)?,
                Step::Update(m, spec) => {
                    let mut new = cur.clone().unwrap_or_else(|| cr(json!({})));
                    new["spec"] = spec.clone();
                    upd(cur.as_ref(), &new, m, now)
                }
            };
            cur = Some(next);
        }
        Ok(cur.expect("at least one step"))
    }

    #[test]
    fn create_by_apply_owns_exactly_the_applied_fields() {
        let mut cfg = cr(json!({"region": "eu", "tags": ["x"],
                                "containers": [{"name": "a", "image": "i1"}]}));
        cfg["metadata"]["labels"] = json!({"app": "hipaa"});
        let out = ssa(None, &cfg, "kubectl", false, T0).unwrap();

        let mut without = out.clone();
        set_managed_fields(&mut without, None);
        assert_eq!(without, cfg, "the object is the applied config");
        assert_eq!(
            out["metadata"]["managedFields"],
            json!([{
                "manager": "kubectl", "operation": "Apply", "apiVersion": AV, "time": T0,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:region": {}, "f:tags": {},
                               "f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:image": {}}}}
                }
            }])
        );
    }

    #[test]
    fn reapplying_the_same_config_changes_nothing_not_even_time() {
        let cfg = cr(json!({"region": "eu", "zones": ["a"], "containers": [{"name": "a"}]}));
        let first = ssa(None, &cfg, "kubectl", false, T0).unwrap();
        let second = ssa(Some(&first), &cfg, "kubectl", false, T1).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn apply_removal_cases() {
        use Step::*;
        let cases: Vec<(&str, Vec<Step>, Value)> = vec![
            (
                "a field only the applier owned is deleted when it stops applying it",
                vec![
                    Apply("a", json!({"region": "eu", "replicas": 3})),
                    Apply("a", json!({"region": "eu"})),
                ],
                json!({"region": "eu"}),
            ),
            (
                "a field another applier also applies (same value) is kept",
                vec![
                    Apply("a", json!({"region": "eu", "replicas": 3})),
                    Apply("b", json!({"replicas": 3})),
                    Apply("a", json!({"region": "eu"})),
                ],
                json!({"region": "eu", "replicas": 3}),
            ),
            (
                "a field an Update manager also owns is kept",
                vec![
                    Update("editor", json!({"replicas": 3})),
                    Apply("a", json!({"region": "eu", "replicas": 3})),
                    Apply("a", json!({"region": "eu"})),
                ],
                json!({"region": "eu", "replicas": 3}),
            ),
            (
                "a granular map entry is removed, its siblings stay",
                vec![
                    Apply("a", json!({"config": {"k1": "v1", "k2": "v2"}})),
                    Apply("a", json!({"config": {"k1": "v1"}})),
                ],
                json!({"config": {"k1": "v1"}}),
            ),
            (
                "a struct nobody owns anything in any more is removed whole",
                vec![
                    Apply("a", json!({"region": "eu", "config": {"k1": "v1"}})),
                    Apply("a", json!({"region": "eu"})),
                ],
                json!({"region": "eu"}),
            ),
            (
                "a struct that still has another owner's field keeps it",
                vec![
                    Apply("a", json!({"config": {"k1": "v1"}})),
                    Apply("b", json!({"config": {"k2": "v2"}})),
                    Apply("a", json!({"region": "eu"})),
                ],
                json!({"region": "eu", "config": {"k2": "v2"}}),
            ),
            (
                "an applier that never applied a field does not remove it",
                vec![
                    Update("editor", json!({"replicas": 1})),
                    Apply("a", json!({"region": "eu"})),
                    Apply("a", json!({})),
                ],
                json!({"replicas": 1}),
            ),
        ];
        for (name, steps, want) in cases {
            let out = run(&steps).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(out["spec"], want, "{name}");
        }
    }

    #[test]
    fn shared_field_ownership_after_removal() {
        use Step::*;
        let out = run(&[
            Apply("a", json!({"region": "eu", "replicas": 3})),
            Apply("b", json!({"replicas": 3})),
            Apply("a", json!({"region": "eu"})),
        ])
        .unwrap();
        assert_eq!(
            fields(&out, "a", "Apply"),
            json!({"f:spec": {"f:region": {}}})
        );
        assert_eq!(
            fields(&out, "b", "Apply"),
            json!({"f:spec": {"f:replicas": {}}})
        );
    }

    #[test]
    fn conflict_with_an_update_manager_on_a_changed_value() {
        use Step::*;
        let err = run(&[
            Update("kubectl-client-side-apply", json!({"region": "us"})),
            Apply("operator", json!({"region": "eu"})),
        ]);
        let c = conflicts(err);
        assert_eq!(
            c.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using hipaa.dev/v1alpha1: .spec.region"
        );
        assert_eq!(c.0[0].field, ".spec.region");
        assert_eq!(
            c.0[0].cause_message(),
            "conflict with \"kubectl-client-side-apply\" using hipaa.dev/v1alpha1"
        );
    }

    #[test]
    fn same_value_is_shared_not_a_conflict() {
        use Step::*;
        let out = run(&[
            Update("editor", json!({"region": "us"})),
            Apply("operator", json!({"region": "us"})),
        ])
        .unwrap();
        assert_eq!(
            fields(&out, "operator", "Apply"),
            json!({"f:spec": {"f:region": {}}})
        );
        assert_eq!(
            fields(&out, "editor", "Update"),
            json!({"f:spec": {".": {}, "f:region": {}}})
        );
    }

    #[test]
    fn several_conflicts_are_grouped_by_sorted_manager() {
        use Step::*;
        let err = run(&[
            Update(
                "writer",
                json!({"region": "us", "replicas": 1, "containers": [{"name": "a", "image": "i1"}]}),
            ),
            Apply("applier-b", json!({"tags": ["x"]})),
            Apply(
                "c",
                json!({"region": "eu", "replicas": 2, "tags": ["y"], "containers": [{"name": "a", "image": "i2"}]}),
            ),
        ]);
        assert_eq!(
            conflicts(err).to_string(),
            "Apply failed with 4 conflicts: conflicts with \"applier-b\":\n- .spec.tags\n\
             conflicts with \"writer\" using hipaa.dev/v1alpha1:\n- .spec.region\n- .spec.replicas\n\
             - .spec.containers[name=\"a\"].image"
        );
    }

    #[test]
    fn force_moves_ownership_to_the_applier() {
        use Step::*;
        let out = run(&[
            Update("editor", json!({"region": "us", "replicas": 1})),
            Force("operator", json!({"region": "eu"})),
        ])
        .unwrap();
        assert_eq!(out["spec"], json!({"region": "eu", "replicas": 1}));
        assert_eq!(
            fields(&out, "operator", "Apply"),
            json!({"f:spec": {"f:region": {}}})
        );
        assert_eq!(
            fields(&out, "editor", "Update"),
            json!({"f:spec": {".": {}, "f:replicas": {}}})
        );

        // An entry that loses its last field disappears.
        let out = run(&[
            Apply("a", json!({"region": "us"})),
            Force("b", json!({"region": "eu"})),
        ])
        .unwrap();
        assert!(entry(&out, "a", "Apply").is_none());
        assert_eq!(
            out["metadata"]["managedFields"].as_array().unwrap().len(),
            1
        );
    }

    #[test]
    fn map_list_items_merge_by_key_and_removed_items_go() {
        use Step::*;
        let s = schema();
        let first = run(&[Apply(
            "a",
            json!({"containers": [{"name": "a", "image": "i1"}, {"name": "b", "image": "i2"}]}),
        )])
        .unwrap();
        // Another writer adds a port to item "a".
        let mut edited = first.clone();
        edited["spec"]["containers"][0]["port"] = json!(80);
        let edited = record_update(update_req(Some(&first), &edited, "scaler", &s, T1));
        assert_eq!(
            fields(&edited, "scaler", "Update"),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {"f:port": {}}}}})
        );
        // The applier drops item "b" and changes a's image: b goes, a keeps the port.
        let cfg = cr(json!({"containers": [{"name": "a", "image": "i3"}]}));
        let out = apply(apply_req(Some(&edited), &cfg, "a", false, &s, T2)).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "i3", "port": 80}])
        );
        assert_eq!(
            fields(&out, "a", "Apply"),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:image": {}}}}})
        );
        assert!(entry(&out, "scaler", "Update").is_some());

        // A second applier's new item is appended after the live ones.
        let out = ssa(
            Some(&out),
            &cr(json!({"containers": [{"name": "z"}]})),
            "b",
            false,
            T3,
        )
        .unwrap();
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "z"]);
    }

    #[test]
    fn list_order_follows_the_applied_order_and_keeps_live_only_items_in_place() {
        use Step::*;
        let c = |names: &[&str]| json!({"containers": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()});
        let names = |o: &Value| -> Vec<String> {
            o["spec"]["containers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect()
        };
        let out = run(&[Apply("a", c(&["x", "y"])), Apply("a", c(&["y", "x"]))]).unwrap();
        assert_eq!(
            names(&out),
            ["y", "x"],
            "applied order wins for the applier's items"
        );
        let out = run(&[
            Update("b", c(&["p"])),
            Apply("a", c(&["x", "y"])),
            Apply("a", c(&["y", "x"])),
        ])
        .unwrap();
        assert_eq!(
            names(&out),
            ["p", "y", "x"],
            "another owner's item keeps its place"
        );
        let out = run(&[Apply("a", c(&["x", "y"])), Apply("b", c(&["z", "x"]))]).unwrap();
        assert_eq!(
            names(&out),
            ["z", "x", "y"],
            "shared items follow the applied order, new ones come first when applied first"
        );
    }

    #[test]
    fn label_conflict_renders_a_metadata_path() {
        let s = schema();
        let mut obj = cr(json!({}));
        obj["metadata"]["labels"] = json!({"app": "one"});
        let live = record_update(update_req(None, &obj, "kubectl-label", &s, T0));
        let mut cfg = cr(json!({}));
        cfg["metadata"]["labels"] = json!({"app": "two", "new": "x"});
        let c = conflicts(apply(apply_req(Some(&live), &cfg, "op", false, &s, T1)));
        assert_eq!(
            c.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-label\" using hipaa.dev/v1alpha1: .metadata.labels.app"
        );
        let forced = apply(apply_req(Some(&live), &cfg, "op", true, &s, T1)).unwrap();
        assert_eq!(
            forced["metadata"]["labels"],
            json!({"app": "two", "new": "x"})
        );
        // The Update entry keeps only the map itself (".") once its label is taken, and the
        // empty `spec: {}` it created (an empty map is owned as a leaf).
        assert_eq!(
            fields(&forced, "kubectl-label", "Update"),
            json!({"f:metadata": {"f:labels": {}}, "f:spec": {}})
        );
    }

    #[test]
    fn map_list_with_two_keys_and_a_defaulted_key() {
        let out = ssa(
            None,
            &cr(json!({"ports": [{"port": 80}, {"port": 80, "protocol": "UDP"}]})),
            "a",
            false,
            T0,
        )
        .unwrap();
        let f = fields(&out, "a", "Apply");
        assert!(
            f["f:spec"]["f:ports"]
                .get("k:{\"port\":80,\"protocol\":\"TCP\"}")
                .is_some(),
            "{f}"
        );
        assert!(
            f["f:spec"]["f:ports"]
                .get("k:{\"port\":80,\"protocol\":\"UDP\"}")
                .is_some(),
            "{f}"
        );
        let path = [
            "f:spec".to_string(),
            "f:ports".to_string(),
            "k:{\"port\":80,\"protocol\":\"TCP\"}".to_string(),
        ];
        assert_eq!(render_path(&path), ".spec.ports[port=80,protocol=\"TCP\"]");
    }

    #[test]
    fn set_list_is_a_union_and_each_applier_owns_its_values() {
        use Step::*;
        let out = run(&[
            Apply("a", json!({"zones": ["x", "y"]})),
            Apply("b", json!({"zones": ["z"]})),
        ])
        .unwrap();
        assert_eq!(out["spec"]["zones"], json!(["x", "y", "z"]));
        assert_eq!(
            fields(&out, "b", "Apply"),
            json!({"f:spec": {"f:zones": {"v:\"z\"": {}}}})
        );
        let out = ssa(Some(&out), &cr(json!({"zones": ["x"]})), "a", false, T2).unwrap();
        assert_eq!(out["spec"]["zones"], json!(["x", "z"]));
    }

    #[test]
    fn atomic_list_and_atomic_map_are_replaced_whole() {
        use Step::*;
        let out = run(&[
            Apply("a", json!({"tags": ["a", "b"]})),
            Apply("a", json!({"tags": ["c"]})),
        ])
        .unwrap();
        assert_eq!(out["spec"]["tags"], json!(["c"]));
        assert_eq!(
            fields(&out, "a", "Apply"),
            json!({"f:spec": {"f:tags": {}}})
        );
        // Another applier changing an atomic list conflicts on the whole list.
        let c = conflicts(ssa(Some(&out), &cr(json!({"tags": ["d"]})), "b", false, T2));
        assert_eq!(
            c.to_string(),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.tags"
        );

        // An atomic map is not merged key by key: tier set by someone else is gone.
        let out = run(&[
            Update("editor", json!({"selector": {"app": "x", "tier": "db"}})),
            Force("a", json!({"selector": {"app": "y"}})),
        ])
        .unwrap();
        assert_eq!(out["spec"]["selector"], json!({"app": "y"}));
        assert_eq!(
            fields(&out, "a", "Apply"),
            json!({"f:spec": {"f:selector": {}}})
        );
    }

    #[test]
    fn update_after_apply_moves_only_the_changed_fields() {
        let s = schema();
        let applied = ssa(
            None,
            &cr(json!({"region": "eu", "replicas": 3})),
            "a",
            false,
            T0,
        )
        .unwrap();
        let mut new = applied.clone();
        new["spec"]["region"] = json!("us");
        let out = record_update(update_req(Some(&applied), &new, "editor", &s, T1));
        assert_eq!(out["spec"], json!({"region": "us", "replicas": 3}));
        let a = entry(&out, "a", "Apply").unwrap();
        assert_eq!(a["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        assert_eq!(a["time"], T0, "the applier's entry time is untouched");
        let e = entry(&out, "editor", "Update").unwrap();
        assert_eq!(e["fieldsV1"], json!({"f:spec": {"f:region": {}}}));
        assert_eq!(e["time"], T1);
        assert_eq!(e["apiVersion"], AV);

        // A write that changes nothing leaves managedFields alone.
        let again = record_update(update_req(Some(&out), &out, "editor", &s, T2));
        assert_eq!(again, out);
        // Removing a field takes it from its owner.
        let mut new = out.clone();
        new["spec"].as_object_mut().unwrap().remove("replicas");
        let out2 = record_update(update_req(Some(&out), &new, "editor", &s, T2));
        assert!(entry(&out2, "a", "Apply").is_none());
        assert_eq!(
            entry(&out2, "editor", "Update").unwrap()["time"],
            T1,
            "removal alone does not bump time"
        );
    }

    #[test]
    fn create_by_update_owns_every_field_with_dots_for_new_containers() {
        let mut obj = cr(json!({"region": "eu", "containers": [{"name": "a", "image": "i"}]}));
        obj["metadata"]["labels"] = json!({"app": "x"});
        obj["metadata"]["finalizers"] = json!(["hipaa.dev/cleanup"]);
        obj["metadata"]["uid"] = json!("u-1");
        obj["metadata"]["resourceVersion"] = json!("1");
        obj["metadata"]["creationTimestamp"] = json!(T0);
        let out = upd(None, &obj, "kubectl-create", T0);
        assert_eq!(
            out["metadata"]["managedFields"],
            json!([{
                "manager": "kubectl-create", "operation": "Update", "apiVersion": AV, "time": T0,
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}},
                                   "f:finalizers": {".": {}, "v:\"hipaa.dev/cleanup\"": {}}},
                    "f:spec": {".": {}, "f:region": {},
                               "f:containers": {".": {}, "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:image": {}}}}
                }
            }])
        );
    }

    #[test]
    fn status_subresource_writes_are_tracked_separately() {
        let s = schema();
        let mut cfg = cr(json!({"region": "eu"}));
        cfg["status"] = json!({"phase": "Bogus"});
        let created = apply(apply_req(None, &cfg, "kubectl", false, &s, T0)).unwrap();
        assert!(
            created.get("status").is_none(),
            "main-resource apply does not set status"
        );
        assert_eq!(
            fields(&created, "kubectl", "Apply"),
            json!({"f:spec": {"f:region": {}}})
        );

        // Status update by a controller.
        let mut new = created.clone();
        new["status"] = json!({"phase": "Ready", "conditions": [{"type": "Ok", "status": "True"}]});
        let req = UpdateRequest {
            subresource: Some("status"),
            ..update_req(Some(&created), &new, "ctrl", &s, T1)
        };
        let out = record_update(req);
        let e = entry(&out, "ctrl", "Update").unwrap();
        assert_eq!(e["subresource"], "status");
        assert_eq!(
            e["fieldsV1"],
            json!({"f:status": {".": {}, "f:phase": {},
                   "f:conditions": {".": {}, "k:{\"type\":\"Ok\"}": {".": {}, "f:type": {}, "f:status": {}}}}})
        );

        // A main-resource write that also touches status does not track status.
        let mut new = out.clone();
        new["spec"]["region"] = json!("us");
        new["status"]["phase"] = json!("Other");
        let out2 = upd(Some(&out), &new, "editor", T2);
        assert_eq!(
            fields(&out2, "editor", "Update"),
            json!({"f:spec": {"f:region": {}}})
        );
        assert_eq!(
            entry(&out2, "ctrl", "Update").unwrap()["fieldsV1"],
            e["fieldsV1"]
        );

        // Status apply: only .status is merged and owned, with subresource recorded.
        let mut scfg = cr(json!({"region": "ignored"}));
        scfg["status"] = json!({"phase": "Applied"});
        let req = ApplyRequest {
            subresource: Some("status"),
            ..apply_req(Some(&out2), &scfg, "ctrl-ssa", true, &s, T3)
        };
        let out3 = apply(req).unwrap();
        assert_eq!(out3["spec"]["region"], "us");
        assert_eq!(out3["status"]["phase"], "Applied");
        let e = entry(&out3, "ctrl-ssa", "Apply").unwrap();
        assert_eq!(e["subresource"], "status");
        assert_eq!(e["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
        assert_eq!(
            fields(&out3, "ctrl", "Update")["f:status"].get("f:phase"),
            None,
            "forced away"
        );
    }

    #[test]
    fn metadata_rules() {
        // Finalizers are a set, labels are granular: two appliers add to both.
        let mut a = cr(json!({}));
        a["metadata"]["labels"] = json!({"x": "1"});
        a["metadata"]["finalizers"] = json!(["a/f"]);
        a["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Namespace", "name": "n", "uid": "u1"}]);
        let out = ssa(None, &a, "a", false, T0).unwrap();
        let mut b = cr(json!({}));
        b["metadata"]["labels"] = json!({"y": "2"});
        b["metadata"]["finalizers"] = json!(["b/f"]);
        let out = ssa(Some(&out), &b, "b", false, T1).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"x": "1", "y": "2"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["a/f", "b/f"]));
        assert_eq!(
            fields(&out, "a", "Apply"),
            json!({"f:metadata": {"f:labels": {"f:x": {}}, "f:finalizers": {"v:\"a/f\"": {}},
                   "f:ownerReferences": {"k:{\"uid\":\"u1\"}": {".": {}, "f:apiVersion": {}, "f:kind": {}, "f:name": {}, "f:uid": {}}}}})
        );
        // a drops its finalizer and label; b's stay.
        let out = ssa(Some(&out), &cr(json!({})), "a", false, T2).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["b/f"]));
        assert!(out["metadata"].get("ownerReferences").is_none());
        assert_eq!(out["metadata"]["name"], "t1", "name is never pruned");

        // Server-set metadata in the applied config is neither merged nor tracked.
        let mut live = out.clone();
        live["metadata"]["uid"] = json!("real-uid");
        let mut c = cr(json!({"region": "eu"}));
        c["metadata"]["uid"] = json!("bogus");
        c["metadata"]["resourceVersion"] = json!("7");
        c["metadata"]["creationTimestamp"] = json!(T0);
        let out = ssa(Some(&live), &c, "c", false, T3).unwrap();
        assert_eq!(out["metadata"]["uid"], "real-uid");
        assert_eq!(
            fields(&out, "c", "Apply"),
            json!({"f:spec": {"f:region": {}}})
        );

        // managedFields in an applied config are refused.
        let mut bad = cr(json!({}));
        bad["metadata"]["managedFields"] = json!([]);
        assert_eq!(
            ssa(None, &bad, "x", false, T0),
            Err(ApplyError::BadRequest(
                "metadata.managedFields must be nil".into()
            ))
        );
    }

    #[test]
    fn kubectl_upgrade_from_client_side_apply() {
        let s = schema();
        let last = cr(json!({"region": "us"}));
        let mut obj = cr(json!({"region": "us"}));
        obj["metadata"]["annotations"] =
            json!({LAST_APPLIED_ANNOTATION: serde_json::to_string(&last).unwrap()});
        let live = record_update(update_req(None, &obj, "kubectl-client-side-apply", &s, T0));

        // kubectl may take fields whose value still matches last-applied.
        let cfg = cr(json!({"region": "eu"}));
        let out = apply(apply_req(Some(&live), &cfg, "kubectl", false, &s, T1)).unwrap();
        assert_eq!(out["spec"]["region"], "eu");
        assert_eq!(
            fields(&out, "kubectl", "Apply"),
            json!({"f:spec": {"f:region": {}}})
        );
        assert_eq!(
            out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
            "{\"apiVersion\":\"hipaa.dev/v1alpha1\",\"kind\":\"Tenant\",\"metadata\":{\"name\":\"t1\",\"namespace\":\"ns\"},\"spec\":{\"region\":\"eu\"}}\n"
        );
        // Any other manager still conflicts.
        conflicts(apply(apply_req(
            Some(&live),
            &cfg,
            "operator",
            false,
            &s,
            T1,
        )));

        // Once someone else changed the value, kubectl conflicts too.
        let mut edited = live.clone();
        edited["spec"]["region"] = json!("ap");
        let edited = record_update(update_req(Some(&live), &edited, "editor", &s, T1));
        let c = conflicts(apply(apply_req(
            Some(&edited),
            &cfg,
            "kubectl",
            false,
            &s,
            T2,
        )));
        assert_eq!(c.0[0].manager, "editor");
    }

    #[test]
    fn client_supplied_managed_fields() {
        let s = schema();
        let live = upd(
            None,
            &cr(json!({"region": "eu"})),
            "kubectl-client-side-apply",
            T0,
        );
        // A client rewrites the entries (as kubectl's csa->ssa migration does).
        let mut new = live.clone();
        new["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
        new["metadata"]["managedFields"][0]["operation"] = json!("Apply");
        let out = record_update(update_req(Some(&live), &new, "kubectl", &s, T1));
        assert_eq!(
            fields(&out, "kubectl", "Apply"),
            json!({"f:spec": {".": {}, "f:region": {}}})
        );
        assert!(entry(&out, "kubectl-client-side-apply", "Update").is_none());

        // [{}] clears them, and later updates of an untracked object stay untracked.
        let mut new = out.clone();
        new["metadata"]["managedFields"] = json!([{}]);
        let cleared = record_update(update_req(Some(&out), &new, "x", &s, T2));
        assert!(cleared["metadata"].get("managedFields").is_none());
        let mut new = cleared.clone();
        new["spec"]["region"] = json!("us");
        let still = record_update(update_req(Some(&cleared), &new, "x", &s, T3));
        assert!(still["metadata"].get("managedFields").is_none());

        // An empty list does not clear (the stored entries are used).
        let mut new = out.clone();
        new["metadata"]["managedFields"] = json!([]);
        let kept = record_update(update_req(Some(&out), &new, "x", &s, T2));
        assert_eq!(
            kept["metadata"]["managedFields"],
            out["metadata"]["managedFields"]
        );
    }

    #[test]
    fn invalid_requests() {
        let cases: Vec<(&str, Value, ApplyError)> = vec![
            (
                "map-list item without its key",
                cr(json!({"containers": [{"image": "i"}]})),
                ApplyError::Invalid(".spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)".into()),
            ),
            (
                "duplicate map-list keys",
                cr(json!({"containers": [{"name": "a"}, {"name": "a"}]})),
                ApplyError::Invalid(".spec.containers: duplicate entries for key [name=\"a\"]".into()),
            ),
            (
                "wrong apiVersion",
                json!({"apiVersion": "hipaa.dev/v1", "kind": "Tenant", "metadata": {"name": "t"}}),
                ApplyError::BadRequest("invalid object type: hipaa.dev/v1, Kind=Tenant".into()),
            ),
            (
                "missing name",
                json!({"apiVersion": AV, "kind": "Tenant", "metadata": {}}),
                ApplyError::BadRequest("metadata.name: Required value: name is required".into()),
            ),
        ];
        for (name, cfg, want) in cases {
            assert_eq!(ssa(None, &cfg, "m", false, T0), Err(want), "{name}");
        }
    }

    #[test]
    fn entries_are_sorted_like_the_apiserver() {
        use Step::*;
        let out = run(&[
            Update("zeta", json!({"region": "eu"})),
            Apply("beta", json!({"replicas": 1})),
            Update(
                "alpha",
                json!({"region": "eu", "replicas": 1, "tags": ["t"]}),
            ),
            Apply("aaa", json!({"zones": ["z"]})),
        ])
        .unwrap();
        let order: Vec<(String, String)> = out["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["operation"].as_str().unwrap().into(),
                    e["manager"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want = [
            ("Apply", "beta"),
            ("Apply", "aaa"),
            ("Update", "zeta"),
            ("Update", "alpha"),
        ];
        assert_eq!(order, want.map(|(a, b)| (a.to_string(), b.to_string())));
    }

    #[test]
    fn builtin_kinds_without_schema() {
        let empty = json!({});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
                        "data": {"k": "v"}});
        let out = record_update(UpdateRequest {
            schema: None,
            api_version: "v1",
            ..update_req(None, &cm, "kubectl-create", &empty, T0)
        });
        assert_eq!(
            fields(&out, "kubectl-create", "Update"),
            json!({"f:data": {".": {}, "f:k": {}}})
        );

        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
                           "spec": {"holderIdentity": "me", "renewTime": "x"}});
        let req = UpdateRequest {
            schema: None,
            api_version: "coordination.k8s.io/v1",
            status_subresource: false,
            ..update_req(None, &lease, "op", &empty, T0)
        };
        let out = record_update(req);
        assert_eq!(
            fields(&out, "op", "Update"),
            json!({"f:spec": {"f:holderIdentity": {}, "f:renewTime": {}}})
        );

        // Lists are atomic without a schema; maps granular.
        let s1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}, "x": {"list": [1, 2]}});
        let req = ApplyRequest {
            schema: None,
            api_version: "v1",
            ..apply_req(None, &s1, "a", false, &empty, T0)
        };
        let out = apply(req).unwrap();
        assert_eq!(
            fields(&out, "a", "Apply"),
            json!({"f:data": {"f:a": {}}, "f:x": {"f:list": {}}})
        );
    }

    #[test]
    fn preserve_unknown_fields_own_nested_objects_as_map_entries() {
        let out = ssa(None, &cr(json!({"extra": {"a": {"b": 1}}})), "m", false, T0).unwrap();
        assert_eq!(
            fields(&out, "m", "Apply"),
            json!({"f:spec": {"f:extra": {"f:a": {".": {}, "f:b": {}}}}})
        );
    }

    #[test]
    fn fields_v1_round_trip_and_path_rendering() {
        let v = json!({"f:a": {".": {}, "f:b": {}}, "f:c": {}, "f:l": {"k:{\"name\": \"x\"}": {"f:image": {}}}, "f:s": {"v:\"q\"": {}, "i:2": {}}});
        let set = FieldSet::from_fields_v1(&v);
        let back = set.to_fields_v1();
        assert_eq!(
            back["f:l"],
            json!({"k:{\"name\":\"x\"}": {"f:image": {}}}),
            "keys are canonicalised"
        );
        assert_eq!(FieldSet::from_fields_v1(&back), set);
        let rendered: Vec<String> = set.paths().iter().map(|p| render_path(p)).collect();
        assert_eq!(
            rendered,
            [
                ".a",
                ".c",
                ".a.b",
                ".l[name=\"x\"].image",
                ".s[=\"q\"]",
                ".s[2]"
            ]
        );
    }
}
