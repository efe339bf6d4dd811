//! The object semantics every write shares, as the real API server applies them:
//! server-set metadata (uid, creationTimestamp, resourceVersion, generation), the status
//! subresource split, schema defaulting/pruning/validation for custom resources,
//! managedFields, finalizers holding deletion, no-op writes that change nothing, dryRun,
//! and the side effects of writing Namespaces and CustomResourceDefinitions.

use std::sync::Arc;

use serde_json::{Value, json};

use super::apimachinery::{names, strategic};
use super::managed_fields;
use super::registry::{ResourceType, Special};
use super::status::ApiError;
use super::store::State;
use crate::validation::{FieldError, FieldErrorType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Apply,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields refuse the request (kubectl's default).
    Strict,
    /// Unknown fields are dropped with a warning header (the server's default).
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

pub struct WriteOptions {
    pub manager: String,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub subresource: Option<String>,
    pub operation: Operation,
    pub force: bool,
}

pub struct Outcome {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
    /// The write removed the last finalizer of an object being deleted: it is gone.
    pub deleted: bool,
}

pub enum Deleted {
    /// Finalizers hold the object; it now has a deletionTimestamp.
    Pending(Value),
    /// The object is gone.
    Gone(Value),
}

/// RFC 3339 UTC time with second precision, as metav1.Time serializes.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The apiVersion objects of this type are stored with.
fn stored_api_version(rt: &ResourceType) -> String {
    if rt.special == Special::EventsV1 {
        "v1".into()
    } else {
        rt.api_version()
    }
}

fn check_type(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    let expected = stored_api_version(rt);
    if let Some(api_version) = body["apiVersion"].as_str()
        && api_version != expected
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected})"
        )));
    }
    if let Some(kind) = body["kind"].as_str()
        && kind != rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

fn invalid(
    rt: &ResourceType,
    name: &str,
    field: &str,
    kind: FieldErrorType,
    value: Option<Value>,
    detail: &str,
) -> ApiError {
    ApiError::invalid(
        rt,
        name,
        &[FieldError {
            field: field.into(),
            kind,
            value,
            detail: detail.into(),
        }],
    )
}

fn require_namespace(state: &State, namespace: &str) -> Result<(), ApiError> {
    match state.get("namespaces", "", namespace) {
        None => Err(ApiError::namespace_not_found(namespace)),
        Some(ns) if !ns["metadata"]["deletionTimestamp"].is_null() => {
            Err(ApiError::namespace_terminating(namespace))
        }
        Some(_) => Ok(()),
    }
}

pub fn create(
    state: &mut State,
    rt: &Arc<ResourceType>,
    namespace: Option<&str>,
    mut body: Value,
    options: &WriteOptions,
) -> Result<Outcome, ApiError> {
    check_type(rt, &body)?;
    if let (Some(url_ns), Some(body_ns)) = (namespace, body["metadata"]["namespace"].as_str())
        && url_ns != body_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let name = match (
        body["metadata"]["name"].as_str(),
        body["metadata"]["generateName"].as_str(),
    ) {
        (Some(name), _) if !name.is_empty() => name.to_string(),
        (_, Some(prefix)) if !prefix.is_empty() => {
            names::generate_name(prefix, &names::random_suffix())
        }
        _ => {
            return Err(invalid(
                rt,
                "",
                "metadata.name",
                FieldErrorType::Required,
                None,
                "name or generateName is required",
            ));
        }
    };
    body["metadata"]["name"] = json!(name);
    if let Some(ns) = namespace {
        require_namespace(state, ns)?;
    }
    let ns = namespace.unwrap_or_default();
    if state.get(&rt.storage, ns, &name).is_some() {
        return Err(ApiError::already_exists(rt, &name));
    }
    finish(state, rt, ns, &name, None, body, options)
}

pub fn update(
    state: &mut State,
    rt: &Arc<ResourceType>,
    namespace: Option<&str>,
    name: &str,
    body: Value,
    options: &WriteOptions,
) -> Result<Outcome, ApiError> {
    check_type(rt, &body)?;
    if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            body["metadata"]["name"].as_str().unwrap_or_default()
        )));
    }
    let ns = namespace.unwrap_or_default();
    let old = state
        .get(&rt.storage, ns, name)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
        && rv
            != old["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return Err(ApiError::conflict(rt, name));
    }
    finish(state, rt, ns, name, Some(old), body, options)
}

pub fn patch(
    state: &mut State,
    rt: &Arc<ResourceType>,
    namespace: Option<&str>,
    name: &str,
    content_type: &str,
    body: &[u8],
    options: &WriteOptions,
) -> Result<Outcome, ApiError> {
    let ns = namespace.unwrap_or_default();
    let old = state.get(&rt.storage, ns, name);
    let parse_json = |body: &[u8]| -> Result<Value, ApiError> {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
    };
    // The patch types the real server takes, in its order (its 415 lists them so):
    // strategic merge patch only for built-in kinds.
    let accepted: &[&str] = if rt.special == Special::Custom {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
    } else {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]
    };
    if content_type == "application/apply-patch+yaml" {
        let applied: Value = serde_yaml_ng::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        let mut applied = if rt.special == Special::EventsV1 {
            super::events::v1_to_core(&applied)
        } else {
            applied
        };
        if !applied.is_object() {
            return Err(ApiError::bad_request(
                "the applied configuration is not an object",
            ));
        }
        check_type(rt, &applied)?;
        if applied["apiVersion"].is_null() || applied["kind"].is_null() {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an applied configuration",
            ));
        }
        if applied["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n != name)
        {
            return Err(ApiError::bad_request(
                "the name of the applied object does not match the name on the URL",
            ));
        }
        applied["metadata"]["name"] = json!(name);
        if let Some(ns) = namespace {
            applied["metadata"]["namespace"] = json!(ns);
            if old.is_none() {
                require_namespace(state, ns)?;
            }
        }
        let now = now();
        let merged = managed_fields::apply(managed_fields::ApplyRequest {
            live: old.as_deref(),
            applied: &applied,
            manager: &options.manager,
            force: options.force,
            schema: rt.schema.as_ref(),
            api_version: &stored_api_version(rt),
            now: &now,
            subresource: options.subresource.as_deref(),
            status_subresource: rt.status_subresource,
        })
        .map_err(|error| match error {
            managed_fields::ApplyError::Conflicts(conflicts) => {
                let causes = conflicts
                    .0
                    .iter()
                    .map(|c| json!({"reason": "FieldManagerConflict", "message": c.cause_message(), "field": c.field}))
                    .collect();
                ApiError::apply_conflict(rt, name, conflicts.to_string(), causes)
            }
            managed_fields::ApplyError::BadRequest(message) => ApiError::bad_request(message),
            managed_fields::ApplyError::Invalid(message) => {
                invalid(rt, name, "metadata.managedFields", FieldErrorType::Invalid, None, &message)
            }
        })?;
        return finish(state, rt, ns, name, old, merged, options);
    }
    let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
    let current = if rt.special == Special::EventsV1 {
        super::events::core_to_v1(&old)
    } else {
        (*old).clone()
    };
    let patched = match content_type {
        "application/merge-patch+json" => {
            super::apimachinery::apply_merge_patch(&current, &parse_json(body)?)
        }
        "application/json-patch+json" => {
            super::apimachinery::apply_json_patch(&current, &parse_json(body)?)
                .map_err(|e| {
                    ApiError::internal(format!(
                        "the server rejected our request due to an error in our request: {e}"
                    ))
                })
                .map_err(|mut e| {
                    e.code = 422;
                    e.reason = "Invalid";
                    e
                })?
        }
        "application/strategic-merge-patch+json" if rt.special != Special::Custom => {
            strategic::strategic_merge(&current, &parse_json(body)?, &rt.kind)
                .map_err(ApiError::bad_request)?
        }
        _ => return Err(ApiError::unsupported_media_type(accepted)),
    };
    let patched = if rt.special == Special::EventsV1 {
        super::events::v1_to_core(&patched)
    } else {
        patched
    };
    if patched["metadata"]["resourceVersion"] != old["metadata"]["resourceVersion"]
        && !patched["metadata"]["resourceVersion"].is_null()
    {
        return Err(ApiError::conflict(rt, name));
    }
    finish(state, rt, ns, name, Some(old), patched, options)
}

/// The part of an object that `metadata.generation` counts changes of.
fn generation_part(object: &Value) -> Value {
    let mut part = object.clone();
    if let Some(map) = part.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    part
}

/// Applies the shared semantics to `new` (the requested state) and stores it.
fn finish(
    state: &mut State,
    rt: &Arc<ResourceType>,
    namespace: &str,
    name: &str,
    old: Option<Arc<Value>>,
    mut new: Value,
    options: &WriteOptions,
) -> Result<Outcome, ApiError> {
    let now = now();
    new["apiVersion"] = json!(stored_api_version(rt));
    new["kind"] = json!(rt.kind);
    {
        let metadata = new["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        metadata.insert("name".into(), json!(name));
        if rt.namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        metadata.remove("selfLink");
        metadata.remove("generateName").filter(|_| old.is_some());
        match &old {
            Some(old) => {
                for key in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old["metadata"].get(key) {
                        Some(v) => metadata.insert(key.into(), v.clone()),
                        None => metadata.remove(key),
                    };
                }
            }
            None => {
                for key in [
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "resourceVersion",
                    "generation",
                ] {
                    metadata.remove(key);
                }
                metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                metadata.insert("creationTimestamp".into(), json!(now));
                if rt.tracks_generation() {
                    metadata.insert("generation".into(), json!(1));
                }
            }
        }
    }
    if old.is_none() {
        let errors = match rt.special {
            Special::Namespace => names::dns1123_label(name),
            _ => names::dns1123_subdomain(name),
        };
        if let Some(first) = errors.first() {
            return Err(invalid(
                rt,
                name,
                "metadata.name",
                FieldErrorType::Invalid,
                Some(json!(name)),
                first,
            ));
        }
    }

    // The status subresource: /status writes change only status, other writes never do.
    let status_write = options.subresource.as_deref() == Some("status");
    if status_write {
        let old = old.as_ref().ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut merged = (**old).clone();
        merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if merged["status"].is_null() {
            merged.as_object_mut().map(|m| m.remove("status"));
        }
        merged["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
        if merged["metadata"]["managedFields"].is_null() {
            merged["metadata"]
                .as_object_mut()
                .map(|m| m.remove("managedFields"));
        }
        new = merged;
    } else if rt.status_subresource {
        match old.as_ref().and_then(|o| o.get("status")) {
            Some(status) => new["status"] = status.clone(),
            None => {
                new.as_object_mut().map(|m| m.remove("status"));
            }
        }
    }

    match rt.special {
        Special::Namespace => default_namespace(&mut new),
        Special::CustomResourceDefinition => prepare_crd(rt, name, &mut new)?,
        Special::None if rt.group.is_empty() && rt.kind == "Secret" => prepare_secret(&mut new),
        _ => {}
    }

    let mut warnings = Vec::new();
    if let Some(validator) = &rt.validator {
        let unknown = validator.unknown_fields(&new);
        if !unknown.is_empty() {
            match options.field_validation {
                FieldValidation::Strict => {
                    let list: Vec<String> = unknown
                        .iter()
                        .map(|f| format!("unknown field {f:?}"))
                        .collect();
                    return Err(ApiError::bad_request(format!(
                        "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
                        rt.kind,
                        rt.version,
                        rt.kind,
                        list.join(", ")
                    )));
                }
                FieldValidation::Warn => {
                    warnings.extend(unknown.iter().map(|f| format!("unknown field {f:?}")))
                }
                FieldValidation::Ignore => {}
            }
            validator.prune(&mut new);
        }
        new = validator
            .validate(&new, old.as_deref())
            .map_err(|invalid| ApiError::invalid(rt, name, &invalid.0))?;
    }

    if rt.tracks_generation()
        && let Some(old) = &old
        && generation_part(old) != generation_part(&new)
    {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        new["metadata"]["generation"] = json!(generation);
    }

    managed_fields::validate_managed_fields(&new).map_err(|message| {
        invalid(
            rt,
            name,
            "metadata.managedFields",
            FieldErrorType::Invalid,
            None,
            &message,
        )
    })?;
    if options.operation != Operation::Apply {
        new = managed_fields::record_update(managed_fields::UpdateRequest {
            old: old.as_deref(),
            new: &new,
            manager: &options.manager,
            schema: rt.schema.as_ref(),
            api_version: &stored_api_version(rt),
            now: &now,
            subresource: options.subresource.as_deref(),
            status_subresource: rt.status_subresource,
        });
    }
    // What the namespace strategy sets after the field manager ran: owned by no manager.
    if rt.special == Special::Namespace {
        prepare_namespace(&mut new);
    }

    // Removing the last finalizer of an object being deleted deletes it.
    if let Some(old) = &old
        && !old["metadata"]["deletionTimestamp"].is_null()
        && new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty)
        && !matches!(
            rt.special,
            Special::Namespace | Special::CustomResourceDefinition
        )
    {
        if !options.dry_run {
            state
                .remove(&rt.storage, namespace, name)
                .map_err(ApiError::internal)?;
        }
        return Ok(Outcome {
            object: new,
            warnings,
            created: false,
            deleted: true,
        });
    }

    if let Some(old) = &old {
        let mut unchanged = new.clone();
        unchanged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if unchanged == **old {
            return Ok(Outcome {
                object: (**old).clone(),
                warnings,
                created: false,
                deleted: false,
            });
        }
    }
    if options.dry_run {
        return Ok(Outcome {
            object: new,
            warnings,
            created: old.is_none(),
            deleted: false,
        });
    }
    if rt.special == Special::CustomResourceDefinition {
        state.registry.register_crd(&new).map_err(|e| {
            invalid(
                rt,
                name,
                "spec.versions",
                FieldErrorType::Invalid,
                None,
                &format!("the schema does not compile: {e}"),
            )
        })?;
    }
    let stored = state
        .put(&rt.storage, namespace, name, new)
        .map_err(ApiError::internal)?;
    Ok(Outcome {
        object: (*stored).clone(),
        warnings,
        created: old.is_none(),
        deleted: false,
    })
}

/// The real server's defaulting of a Namespace (it runs while the body is decoded, so
/// the writing manager owns what it sets): its name as the `kubernetes.io/metadata.name`
/// label.
fn default_namespace(namespace: &mut Value) {
    if let Some(name) = namespace["metadata"]["name"].as_str().map(String::from) {
        if !namespace["metadata"]["labels"].is_object() {
            namespace["metadata"]["labels"] = json!({});
        }
        namespace["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
    }
}

/// What the real server stores of a Secret: `stringData` merged into `data` (base64,
/// its keys winning) and dropped, and `type` defaulted to `Opaque`.
fn prepare_secret(secret: &mut Value) {
    use base64::Engine;
    let Some(map) = secret.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(plain)) = map.remove("stringData") {
        let data = map.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (key, value) in plain {
            let text = value.as_str().unwrap_or_default();
            data[key.as_str()] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
    }
    if map
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        map.insert("type".into(), json!("Opaque"));
    }
}

/// The namespace strategy: the `kubernetes` finalizer unless the spec names its own,
/// and the phase.
fn prepare_namespace(namespace: &mut Value) {
    if namespace["spec"]["finalizers"].is_null() {
        namespace["spec"] = json!({"finalizers": ["kubernetes"]});
    }
    let phase = if namespace["metadata"]["deletionTimestamp"].is_null() {
        "Active"
    } else {
        "Terminating"
    };
    namespace["status"] = json!({"phase": phase});
}

/// Checks a CRD's names and fills in what the real server defaults and reports: the
/// accepted names, the stored versions and the Established / NamesAccepted conditions.
fn prepare_crd(rt: &ResourceType, name: &str, crd: &mut Value) -> Result<(), ApiError> {
    let group = crd["spec"]["group"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let plural = crd["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = crd["spec"]["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Err(invalid(
            rt,
            name,
            "spec",
            FieldErrorType::Required,
            None,
            "spec.group, spec.names.plural and spec.names.kind are required",
        ));
    }
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            rt,
            name,
            "metadata.name",
            FieldErrorType::Invalid,
            Some(json!(name)),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let versions = crd["spec"]["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        return Err(invalid(
            rt,
            name,
            "spec.versions",
            FieldErrorType::Invalid,
            Some(json!([])),
            "must have exactly one version marked as storage version",
        ));
    }
    let storage: Vec<String> = versions
        .iter()
        .filter(|v| v["storage"] == Value::Bool(true))
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    if storage.len() != 1 {
        return Err(invalid(
            rt,
            name,
            "spec.versions",
            FieldErrorType::Invalid,
            None,
            "must have exactly one version marked as storage version",
        ));
    }
    let names = &mut crd["spec"]["names"];
    if names["singular"].is_null() {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names["listKind"].is_null() {
        names["listKind"] = json!(format!("{kind}List"));
    }
    let accepted = crd["spec"]["names"].clone();
    let terminating = !crd["metadata"]["deletionTimestamp"].is_null();
    let time = crd["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Established"))
        .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
        .unwrap_or_else(now);
    let mut stored_versions: Vec<Value> = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !stored_versions.contains(&json!(storage[0])) {
        stored_versions.push(json!(storage[0]));
    }
    let mut conditions = vec![
        json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": time}),
        json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": time}),
    ];
    if terminating {
        conditions.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in progress", "lastTransitionTime": now()}));
    }
    crd["status"] = json!({"acceptedNames": accepted, "conditions": conditions, "storedVersions": stored_versions});
    Ok(())
}

/// Deletes an object as `DELETE` does: preconditions, dryRun, propagation policy, and
/// finalizers that hold it (with a deletionTimestamp) until they are removed.
pub fn delete(
    state: &mut State,
    rt: &Arc<ResourceType>,
    namespace: &str,
    name: &str,
    options: &Value,
) -> Result<Deleted, ApiError> {
    let object = state
        .get(&rt.storage, namespace, name)
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    let preconditions = &options["preconditions"];
    if let Some(uid) = preconditions["uid"].as_str()
        && uid != object["metadata"]["uid"].as_str().unwrap_or_default()
    {
        return Err(ApiError::precondition_failed(
            rt,
            name,
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                object["metadata"]["uid"].as_str().unwrap_or_default()
            ),
        ));
    }
    if let Some(rv) = preconditions["resourceVersion"].as_str()
        && rv
            != object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
    {
        return Err(ApiError::precondition_failed(
            rt,
            name,
            format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
            ),
        ));
    }
    let dry_run = options["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|v| v == "All"));
    let policy = options["propagationPolicy"].as_str().unwrap_or(
        if options["orphanDependents"] == Value::Bool(true) {
            "Orphan"
        } else {
            "Background"
        },
    );
    let mut next = (*object).clone();
    let mut finalizers: Vec<Value> = next["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let add = |finalizers: &mut Vec<Value>, f: &str| {
        if !finalizers.contains(&json!(f)) {
            finalizers.push(json!(f));
        }
    };
    match policy {
        "Foreground" => add(&mut finalizers, "foregroundDeletion"),
        "Orphan" => add(&mut finalizers, "orphan"),
        _ => {}
    }
    // Namespaces and CRDs are emptied first by the garbage collector, as their
    // controllers do in the real server.
    let emptied_first = matches!(
        rt.special,
        Special::Namespace | Special::CustomResourceDefinition
    );
    if finalizers.is_empty() && !emptied_first {
        if !dry_run {
            state
                .remove(&rt.storage, namespace, name)
                .map_err(ApiError::internal)?;
        }
        return Ok(Deleted::Gone((*object).clone()));
    }
    if !next["metadata"]["deletionTimestamp"].is_null()
        && next["metadata"]["finalizers"].as_array().map(Vec::len) == Some(finalizers.len())
    {
        return Ok(Deleted::Pending((*object).clone()));
    }
    if next["metadata"]["deletionTimestamp"].is_null() {
        next["metadata"]["deletionTimestamp"] = json!(now());
        next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    }
    if !finalizers.is_empty() {
        next["metadata"]["finalizers"] = Value::Array(finalizers);
    }
    match rt.special {
        Special::Namespace => prepare_namespace(&mut next),
        Special::CustomResourceDefinition => prepare_crd(rt, name, &mut next)?,
        _ => {}
    }
    if dry_run {
        return Ok(Deleted::Pending(next));
    }
    let stored = state
        .put(&rt.storage, namespace, name, next)
        .map_err(ApiError::internal)?;
    Ok(Deleted::Pending((*stored).clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_store_string_data_in_data_and_default_their_type() {
        let mut secret = json!({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="},
            "stringData": {"b": "plain", "c": "S3cr3t!"}});
        prepare_secret(&mut secret);
        assert_eq!(
            secret,
            json!({"metadata": {"name": "s"}, "type": "Opaque",
                "data": {"a": "eA==", "b": "cGxhaW4=", "c": "UzNjcjN0IQ=="}})
        );
        let mut typed = json!({"metadata": {"name": "t"}, "type": "kubernetes.io/tls"});
        prepare_secret(&mut typed);
        assert_eq!(typed["type"], "kubernetes.io/tls");
        assert!(typed.get("data").is_none(), "no stringData, no data added");
    }

    #[test]
    fn namespaces_carry_their_name_as_a_label_and_the_kubernetes_finalizer() {
        let mut namespace =
            json!({"metadata": {"name": "clinic", "labels": {"team": "a"}}, "spec": {}});
        default_namespace(&mut namespace);
        prepare_namespace(&mut namespace);
        assert_eq!(
            namespace,
            json!({"metadata": {"name": "clinic", "labels": {"team": "a", "kubernetes.io/metadata.name": "clinic"}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        );
    }
}
