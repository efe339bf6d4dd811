//! HTTP plumbing: authentication, path routing, discovery and OpenAPI documents, body
//! limits and response encoding. The verbs themselves are in `handlers`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::handlers;
use super::openapi::{self, ResourceInfo};
use super::registry::ResourceType;
use super::status::ApiError;
use super::store::Store;

/// The largest request body the real API server accepts (3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Shared by every request.
pub struct Server {
    pub store: Store,
    pub token: String,
    /// Wakes the garbage collector after deletions.
    pub gc: tokio::sync::Notify,
}

/// Query parameters, decoded. A repeated parameter keeps its last value.
#[derive(Debug, Default, Clone)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

/// What a request asks of a resource type.
pub struct Target {
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Everything a verb handler needs from the request.
pub struct Call {
    pub method: Method,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Call {
    pub fn accept(&self) -> &str {
        self.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
    }

    /// `fieldManager`, else the user agent's product name, as the real server defaults it.
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager") {
            return m.to_string();
        }
        let agent = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        agent
            .split('/')
            .next()
            .unwrap_or(agent)
            .chars()
            .take(128)
            .collect()
    }
}

pub fn json_response(code: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn text_response(code: StatusCode, text: &'static str) -> Response {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|presented| constant_time_eq(presented.trim().as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The one handler behind every path.
pub async fn handle(State(server): State<Arc<Server>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // As with the real server's system:public-info-viewer role, version and health are
    // readable without credentials.
    let public = matches!(
        parts.uri.path(),
        "/version" | "/healthz" | "/livez" | "/readyz"
    );
    if !public && !authorized(&parts.headers, &server.token) {
        return ApiError::unauthorized().into_response();
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let call = Call {
        method: parts.method,
        query: Query::parse(parts.uri.query()),
        headers: parts.headers,
        body,
    };
    match route(&server, &path, &call) {
        Ok(Routed::Document(value)) => json_response(StatusCode::OK, &value),
        Ok(Routed::Text(text)) => text_response(StatusCode::OK, text),
        Ok(Routed::Resource(target)) => handlers::dispatch(server, target, call).await,
        Err(e) => e.into_response(),
    }
}

async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(MAX_BODY)),
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

enum Routed {
    Document(Value),
    Text(&'static str),
    Resource(Target),
}

fn route(server: &Server, path: &str, call: &Call) -> Result<Routed, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let state = server.store.lock();
    let registry = &state.registry;
    let doc = |v: Option<Value>| v.map(Routed::Document).ok_or_else(ApiError::not_found_path);
    if call.method != Method::GET && !matches!(segments.first(), Some(&"api" | &"apis")) {
        return Err(ApiError::not_found_path());
    }
    match segments.as_slice() {
        ["version"] => Ok(Routed::Document(version())),
        ["healthz"] | ["livez"] | ["readyz"] => Ok(Routed::Text("ok")),
        ["api"] => Ok(Routed::Document(registry.core_versions())),
        ["apis"] => Ok(Routed::Document(registry.group_list())),
        ["api", "v1"] => doc(registry.resource_list("", "v1")),
        ["apis", group] => doc(registry.group(group)),
        ["apis", group, version] => doc(registry.resource_list(group, version)),
        // kubectl asks for v2 only as protobuf, which this server does not speak: a 406
        // makes it fall back to v3 as it does against servers without v2.
        ["openapi", "v2"] if !call.accept().contains("json") && !call.accept().is_empty() => {
            Err(ApiError::not_acceptable())
        }
        ["openapi", "v2"] => {
            let infos: Vec<ResourceInfo> = registry.all().map(|t| resource_info(t)).collect();
            Ok(Routed::Document(openapi::openapi_v2(&infos)))
        }
        ["openapi", "v3"] => {
            let gvs: Vec<(String, String)> = registry
                .group_versions()
                .into_iter()
                .map(|(g, v)| {
                    let path = openapi::group_version_path(&g, &v);
                    let infos: Vec<ResourceInfo> = registry
                        .in_group_version(&g, &v)
                        .iter()
                        .map(|t| resource_info(t))
                        .collect();
                    let hash = openapi::document_hash(&openapi::openapi_v3_group_version(&infos));
                    (path, hash)
                })
                .collect();
            Ok(Routed::Document(openapi::openapi_v3_root(&gvs)))
        }
        ["openapi", "v3", "api", version] => openapi_gv(registry, "", version),
        ["openapi", "v3", "apis", group, version] => openapi_gv(registry, group, version),
        ["api", "v1", rest @ ..] => resource_target(registry, "", "v1", rest),
        ["apis", group, version, rest @ ..] => resource_target(registry, group, version, rest),
        _ => Err(ApiError::not_found_path()),
    }
}

fn openapi_gv(
    registry: &super::registry::Registry,
    group: &str,
    version: &str,
) -> Result<Routed, ApiError> {
    let types = registry.in_group_version(group, version);
    if types.is_empty() {
        return Err(ApiError::not_found_path());
    }
    let infos: Vec<ResourceInfo> = types.iter().map(|t| resource_info(t)).collect();
    Ok(Routed::Document(openapi::openapi_v3_group_version(&infos)))
}

pub fn resource_info(t: &ResourceType) -> ResourceInfo {
    ResourceInfo {
        group: t.group.clone(),
        version: t.version.clone(),
        kind: t.kind.clone(),
        list_kind: t.list_kind(),
        plural: t.plural.clone(),
        namespaced: t.namespaced,
        schema: t.schema.clone(),
        printer_columns: t.printer_columns.clone(),
        has_status_subresource: t.status_subresource,
    }
}

fn resource_target(
    registry: &super::registry::Registry,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Routed, ApiError> {
    let lookup = |plural: &str| {
        registry
            .get(group, version, plural)
            .ok_or_else(ApiError::not_found_path)
    };
    let target =
        |rt: Arc<ResourceType>, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| {
            // A namespaced kind is only reachable in a namespace (or listed across all), a
            // cluster-scoped one never in a namespace.
            if (ns.is_some() && !rt.namespaced) || (name.is_some() && rt.namespaced && ns.is_none())
            {
                return Err(ApiError::not_found_path());
            }
            if let Some(sub) = sub
                && !(sub == "status" && rt.status_subresource)
                && !(sub == "finalize" && rt.plural == "namespaces")
            {
                return Err(ApiError::not_found_path());
            }
            Ok(Routed::Resource(Target {
                rt,
                namespace: ns.map(String::from),
                name: name.map(String::from),
                subresource: sub.map(String::from),
            }))
        };
    match rest {
        [plural] => target(lookup(plural)?, None, None, None),
        // `/namespaces/<ns>/<plural>...` unless it is the namespace object itself.
        ["namespaces", ns, plural]
            if group.is_empty() && (*plural == "status" || *plural == "finalize") =>
        {
            target(lookup("namespaces")?, None, Some(ns), Some(plural))
        }
        ["namespaces", ns, plural] => target(lookup(plural)?, Some(ns), None, None),
        ["namespaces", ns, plural, name] => target(lookup(plural)?, Some(ns), Some(name), None),
        ["namespaces", ns, plural, name, sub] => {
            target(lookup(plural)?, Some(ns), Some(name), Some(sub))
        }
        [plural, name] => target(lookup(plural)?, None, Some(name), None),
        [plural, name, sub] => target(lookup(plural)?, None, Some(name), Some(sub)),
        _ => Err(ApiError::not_found_path()),
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-hipaa-devcluster",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "n/a (hipaa-operator devcluster, Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", other => other })
    })
}
