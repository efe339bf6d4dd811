//! The verbs: get, list, watch, create, update, patch, delete, deletecollection, with
//! the real server's status codes and bodies. Object semantics shared by every write are
//! in `writes`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::apimachinery::{fields::FieldSelector, labels::LabelSelector};
use super::events;
use super::protobuf;
use super::registry::{ResourceType, Special};
use super::server::{Call, Server, Target, json_response};
use super::status::{self, ApiError};
use super::store::{Change, ChangeKind};
use super::table::{self, IncludeObject};
use super::writes::{self, Operation, WriteOptions};

pub async fn dispatch(server: Arc<Server>, target: Target, call: Call) -> Response {
    let result = match (&call.method, target.name.is_some()) {
        (&Method::GET, false) if call.query.flag("watch") => {
            return watch(server, target, call).await;
        }
        (&Method::GET, false) => list(&server, &target, &call),
        (&Method::GET, true) => get(&server, &target, &call),
        (&Method::POST, false) => create(&server, &target, &call),
        (&Method::PUT, true) => update(&server, &target, &call),
        (&Method::PATCH, true) => patch(&server, &target, &call),
        (&Method::DELETE, true) => delete(&server, &target, &call),
        (&Method::DELETE, false) => delete_collection(&server, &target, &call),
        (method, _) => Err(ApiError::method_not_allowed(method.as_str(), &target.rt)),
    };
    match result {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The object as the requested resource type shows it (events.k8s.io/v1 Events are
/// stored as core/v1 Events).
fn present(rt: &ResourceType, object: &Value) -> Value {
    match rt.special {
        Special::EventsV1 => events::core_to_v1(object),
        _ => object.clone(),
    }
}

/// How the client asked for objects: whole, as a table, or as metadata only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Full,
    Table,
    Metadata,
}

fn shape(call: &Call) -> Shape {
    let accept = call.accept();
    if accept.contains("as=Table") {
        Shape::Table
    } else if accept.contains("as=PartialObjectMetadata") {
        Shape::Metadata
    } else {
        Shape::Full
    }
}

fn partial_metadata(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": object["metadata"]})
}

fn include_object(call: &Call) -> IncludeObject {
    call.query
        .get("includeObject")
        .and_then(table::include_object_value)
        .unwrap_or(IncludeObject::Metadata)
}

fn get(server: &Server, target: &Target, call: &Call) -> Result<Response, ApiError> {
    let rt = &target.rt;
    let name = target.name.as_deref().unwrap_or_default();
    let state = server.store.lock();
    let object = state
        .get(
            &rt.storage,
            target.namespace.as_deref().unwrap_or_default(),
            name,
        )
        .ok_or_else(|| ApiError::not_found(rt, name))?;
    let object = present(rt, &object);
    let body = match shape(call) {
        Shape::Full => object,
        Shape::Metadata => partial_metadata(&object),
        Shape::Table => {
            let info = super::server::resource_info(rt);
            table::table(
                &info,
                std::slice::from_ref(&object),
                include_object(call),
                json!({"resourceVersion": object["metadata"]["resourceVersion"]}),
            )
        }
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// Label and field selectors of a list, watch or deletecollection.
struct Selectors {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Selectors {
    fn parse(call: &Call) -> Result<Self, ApiError> {
        let labels = call
            .query
            .get("labelSelector")
            .map(super::apimachinery::labels::parse_label_selector)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = call
            .query
            .get("fieldSelector")
            .map(super::apimachinery::fields::parse_field_selector)
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        Ok(Self { labels, fields })
    }

    fn matches(&self, object: &Value) -> bool {
        let empty = serde_json::Map::new();
        let labels = object["metadata"]["labels"].as_object().unwrap_or(&empty);
        self.labels.as_ref().is_none_or(|s| s.matches(labels))
            && self.fields.as_ref().is_none_or(|s| s.matches(object))
    }
}

/// A `continue` token: where the next page starts.
fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"rv": rv, "ns": namespace, "name": name}).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((
        value["ns"].as_str().ok_or_else(bad)?.to_string(),
        value["name"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

fn list(server: &Server, target: &Target, call: &Call) -> Result<Response, ApiError> {
    let rt = &target.rt;
    let selectors = Selectors::parse(call)?;
    let limit: usize = match call.query.get("limit") {
        Some(l) => l
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        None => 0,
    };
    let start = call
        .query
        .get("continue")
        .map(decode_continue)
        .transpose()?;
    let state = server.store.lock();
    let rv = state.resource_version();
    let mut items = Vec::new();
    let mut next = None;
    for object in state.list(&rt.storage, target.namespace.as_deref()) {
        let key = (
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
        if start.as_ref().is_some_and(|s| key <= *s) || !selectors.matches(&object) {
            continue;
        }
        if limit > 0 && items.len() == limit {
            next = items.last().map(|last: &Value| {
                encode_continue(
                    rv,
                    last["metadata"]["namespace"].as_str().unwrap_or_default(),
                    last["metadata"]["name"].as_str().unwrap_or_default(),
                )
            });
            break;
        }
        items.push(present(rt, &object));
    }
    drop(state);
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = next {
        metadata["continue"] = json!(token);
    }
    let body = match shape(call) {
        Shape::Table => {
            let info = super::server::resource_info(rt);
            table::table(&info, &items, include_object(call), metadata)
        }
        Shape::Metadata => json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadataList",
            "metadata": metadata,
            "items": items.iter().map(partial_metadata).collect::<Vec<_>>(),
        }),
        Shape::Full => json!({
            "apiVersion": rt.api_version(),
            "kind": rt.list_kind(),
            "metadata": metadata,
            "items": items,
        }),
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// The media types a create or update body may have, in the real server's order (its
/// 415 lists them so).
const BODY_MEDIA_TYPES: [&str; 3] = ["application/json", "application/yaml", protobuf::MEDIA_TYPE];

/// Parses a create or update body for `rt` by its content type, as the real server
/// negotiates it: JSON (also when no content type is given), YAML, or Kubernetes
/// protobuf (decoded into the same JSON object, see [`protobuf`]). Media type parameters
/// (`; charset=utf-8`) are ignored; any other media type gets the real server's 415.
pub fn parse_body(rt: &ResourceType, call: &Call) -> Result<Value, ApiError> {
    let media_type = call
        .content_type()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let value: Value = match media_type.as_str() {
        "" | "application/json" => serde_json::from_slice(&call.body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" => serde_yaml_ng::from_slice(&call.body).map_err(|e| {
            ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}"))
        })?,
        protobuf::MEDIA_TYPE => protobuf::decode(rt, &call.body)?,
        _ => return Err(ApiError::unsupported_media_type(&BODY_MEDIA_TYPES)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: the request body is not an object",
        ));
    }
    Ok(value)
}

fn write_options(
    call: &Call,
    target: &Target,
    operation: Operation,
) -> Result<WriteOptions, ApiError> {
    let field_validation = match call.query.get("fieldValidation") {
        None => writes::FieldValidation::Warn,
        Some("Strict") => writes::FieldValidation::Strict,
        Some("Warn") => writes::FieldValidation::Warn,
        Some("Ignore") => writes::FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )));
        }
    };
    let dry_run = match call.query.get("dryRun") {
        None => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported dry run option: {other:?}"
            )));
        }
    };
    Ok(WriteOptions {
        manager: call.field_manager(),
        dry_run,
        field_validation,
        subresource: target.subresource.clone(),
        operation,
        force: call.query.flag("force"),
    })
}

fn respond(code: StatusCode, rt: &ResourceType, object: &Value, warnings: &[String]) -> Response {
    let mut response = json_response(code, &present(rt, object));
    for warning in warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    response
}

fn incoming(rt: &ResourceType, mut body: Value) -> Value {
    if rt.special == Special::EventsV1 {
        body = events::v1_to_core(&body);
    }
    body
}

fn create(server: &Server, target: &Target, call: &Call) -> Result<Response, ApiError> {
    let rt = &target.rt;
    let options = write_options(call, target, Operation::Create)?;
    let body = incoming(rt, parse_body(rt, call)?);
    let mut state = server.store.lock();
    let outcome = writes::create(&mut state, rt, target.namespace.as_deref(), body, &options)?;
    Ok(respond(
        StatusCode::CREATED,
        rt,
        &outcome.object,
        &outcome.warnings,
    ))
}

fn update(server: &Server, target: &Target, call: &Call) -> Result<Response, ApiError> {
    let rt = &target.rt;
    let options = write_options(call, target, Operation::Update)?;
    let body = incoming(rt, parse_body(rt, call)?);
    let name = target.name.as_deref().unwrap_or_default();
    let mut state = server.store.lock();
    let outcome = writes::update(
        &mut state,
        rt,
        target.namespace.as_deref(),
        name,
        body,
        &options,
    )?;
    drop(state);
    if outcome.deleted {
        server.gc.notify_one();
    }
    Ok(respond(
        StatusCode::OK,
        rt,
        &outcome.object,
        &outcome.warnings,
    ))
}

fn patch(server: &Server, target: &Target, call: &Call) -> Result<Response, ApiError> {
    let rt = &target.rt;
    let content_type = call
        .content_type()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let operation = if content_type == "application/apply-patch+yaml" {
        Operation::Apply
    } else {
        Operation::Update
    };
    let options = write_options(call, target, operation)?;
    let name = target.name.as_deref().unwrap_or_default();
    let mut state = server.store.lock();
    let outcome = writes::patch(
        &mut state,
        rt,
        target.namespace.as_deref(),
        name,
        &content_type,
        &call.body,
        &options,
    )?;
    drop(state);
    if outcome.deleted {
        server.gc.notify_one();
    }
    let code = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(respond(code, rt, &outcome.object, &outcome.warnings))
}

fn delete_options(call: &Call) -> Result<Value, ApiError> {
    let mut options = if call.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&call.body)
            .map_err(|e| ApiError::bad_request(format!("couldn't decode DeleteOptions: {e}")))?
    };
    if let Some(policy) = call.query.get("propagationPolicy") {
        options["propagationPolicy"] = json!(policy);
    }
    if let Some(dry_run) = call.query.get("dryRun") {
        options["dryRun"] = json!([dry_run]);
    }
    if let Some(grace) = call.query.get("gracePeriodSeconds") {
        options["gracePeriodSeconds"] = json!(grace.parse::<i64>().unwrap_or(0));
    }
    Ok(options)
}

fn delete(server: &Server, target: &Target, call: &Call) -> Result<Response, ApiError> {
    let rt = &target.rt;
    let name = target.name.as_deref().unwrap_or_default();
    let options = delete_options(call)?;
    let mut state = server.store.lock();
    let outcome = writes::delete(
        &mut state,
        rt,
        target.namespace.as_deref().unwrap_or_default(),
        name,
        &options,
    )?;
    drop(state);
    server.gc.notify_one();
    Ok(match outcome {
        writes::Deleted::Pending(object) => json_response(StatusCode::OK, &present(rt, &object)),
        writes::Deleted::Gone(object) => json_response(
            StatusCode::OK,
            &status::deleted(
                rt,
                name,
                object["metadata"]["uid"].as_str().unwrap_or_default(),
            ),
        ),
    })
}

fn delete_collection(server: &Server, target: &Target, call: &Call) -> Result<Response, ApiError> {
    let rt = &target.rt;
    let selectors = Selectors::parse(call)?;
    let options = delete_options(call)?;
    let mut state = server.store.lock();
    let names: Vec<(String, String)> = state
        .list(&rt.storage, target.namespace.as_deref())
        .iter()
        .filter(|o| selectors.matches(o))
        .map(|o| {
            (
                o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let mut items = Vec::new();
    for (namespace, name) in names {
        match writes::delete(&mut state, rt, &namespace, &name, &options)? {
            writes::Deleted::Pending(o) | writes::Deleted::Gone(o) => items.push(present(rt, &o)),
        }
    }
    let rv = state.resource_version();
    drop(state);
    server.gc.notify_one();
    Ok(json_response(
        StatusCode::OK,
        &json!({"apiVersion": rt.api_version(), "kind": rt.list_kind(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    ))
}

/// One watch event line.
fn event_line(kind: &str, object: Value) -> bytes::Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    bytes::Bytes::from(line)
}

struct WatchContext {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    selectors: Selectors,
    shape: Shape,
    include: IncludeObject,
}

impl WatchContext {
    fn render(&self, object: &Value) -> Value {
        let object = present(&self.rt, object);
        match self.shape {
            Shape::Full => object,
            Shape::Metadata => partial_metadata(&object),
            Shape::Table => {
                let info = super::server::resource_info(&self.rt);
                table::table(
                    &info,
                    std::slice::from_ref(&object),
                    self.include,
                    json!({"resourceVersion": object["metadata"]["resourceVersion"]}),
                )
            }
        }
    }

    /// The event this change is for this watch, if any: an object that starts or stops
    /// matching the selectors is ADDED or DELETED, as the real server's watch cache does.
    fn event(&self, change: &Change) -> Option<bytes::Bytes> {
        if change.storage != self.rt.storage
            || self
                .namespace
                .as_deref()
                .is_some_and(|ns| ns != change.namespace)
        {
            return None;
        }
        let now = self.selectors.matches(&change.object);
        let before = change
            .previous
            .as_ref()
            .is_some_and(|p| self.selectors.matches(p));
        let kind = match change.kind {
            ChangeKind::Added if now => "ADDED",
            ChangeKind::Modified if now && before => "MODIFIED",
            ChangeKind::Modified if now => "ADDED",
            ChangeKind::Modified if before => "DELETED",
            ChangeKind::Deleted if now => "DELETED",
            _ => return None,
        };
        Some(event_line(kind, self.render(&change.object)))
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> bytes::Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        event_line(
            "BOOKMARK",
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata}),
        )
    }
}

/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

async fn watch(server: Arc<Server>, target: Target, call: Call) -> Response {
    let selectors = match Selectors::parse(&call) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let context = WatchContext {
        rt: target.rt.clone(),
        namespace: target.namespace.clone(),
        selectors,
        shape: shape(&call),
        include: include_object(&call),
    };
    let timeout = call
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let bookmarks = call.query.flag("allowWatchBookmarks");
    let send_initial = call.query.flag("sendInitialEvents");
    let requested_rv = call.query.get("resourceVersion").map(String::from);

    // Subscribe under the store lock, so no change falls between replay and live events.
    let (mut receiver, initial, mut last_rv, gone) = {
        let state = server.store.lock();
        let receiver = server.store.subscribe();
        let current = state.resource_version();
        let mut initial = Vec::new();
        let mut gone = None;
        let mut last = current;
        match requested_rv.as_deref() {
            None | Some("0") => {
                for object in state.list(&context.rt.storage, context.namespace.as_deref()) {
                    if context.selectors.matches(&object) {
                        initial.push(event_line("ADDED", context.render(&object)));
                    }
                }
                if send_initial && bookmarks {
                    initial.push(context.bookmark(current, true));
                }
            }
            Some(rv) => match rv.parse::<u64>() {
                Err(_) => {
                    return ApiError::bad_request(format!("invalid resource version: {rv}"))
                        .into_response();
                }
                Ok(rv) => {
                    if send_initial {
                        for object in state.list(&context.rt.storage, context.namespace.as_deref())
                        {
                            if context.selectors.matches(&object) {
                                initial.push(event_line("ADDED", context.render(&object)));
                            }
                        }
                        if bookmarks {
                            initial.push(context.bookmark(current, true));
                        }
                    } else {
                        match state.changes_since(rv) {
                            Some(changes) => {
                                initial.extend(changes.iter().filter_map(|c| context.event(c)));
                            }
                            None => {
                                let status = ApiError::gone(format!(
                                    "too old resource version: {rv} ({})",
                                    state.history_floor() + 1
                                ))
                                .status();
                                gone = Some(event_line("ERROR", status));
                                last = rv;
                            }
                        }
                    }
                }
            },
        }
        (receiver, initial, last, gone)
    };

    let (sender, body_receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(256);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(gone) = gone {
            let _ = sender.send(gone).await;
            return;
        }
        for line in initial {
            if sender.send(line).await.is_err() {
                return;
            }
        }
        let mut bookmark_timer = tokio::time::interval(BOOKMARK_EVERY);
        bookmark_timer.tick().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = sender.closed() => return,
                _ = bookmark_timer.tick(), if bookmarks => {
                    if sender.send(context.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                received = receiver.recv() => match received {
                    Ok(change) => {
                        if change.rv <= last_rv {
                            continue;
                        }
                        last_rv = change.rv;
                        if let Some(line) = context.event(&change)
                            && sender.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    // A watcher too slow to keep up is closed; it resumes from its last
                    // resourceVersion, which the history still holds.
                    Err(_) => return,
                },
            }
        }
    });
    let stream = futures::stream::unfold(body_receiver, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::convert::Infallible>(line), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
