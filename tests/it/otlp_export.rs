//! OTLP export, end to end: the operator binary (`--otlp-endpoint`, JSON encoding) on a
//! devcluster and the simulated AWS sends its reconcile spans to a collector (an OTLP/HTTP
//! receiver in this test); the trace of a pass carries the same id as the status's
//! `traceId`, and the span names the custom resource.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use hipaa_operator::api::HipaaNetwork;
use kube::api::Api;
use serde_json::Value;

use crate::common::{Cluster, eventually, repo};

const NS: &str = "otlp";
const NAME: &str = "clinic-net";

/// What the collector received: (content type, body) per export request.
type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// An OTLP/HTTP trace receiver on a free loopback port; returns its base URL.
async fn collector(received: Received) -> String {
    async fn traces(
        State(received): State<Received>,
        headers: HeaderMap,
        body: Bytes,
    ) -> &'static str {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        received.lock().unwrap().push((content_type, body));
        "{}"
    }
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Every span in the JSON export requests received so far.
fn spans(received: &Received) -> Vec<Value> {
    let mut out = Vec::new();
    for (content_type, body) in received.lock().unwrap().iter() {
        assert_eq!(
            content_type, "application/json",
            "--otlp-protocol http/json"
        );
        let request: Value = serde_json::from_slice(body).expect("an OTLP/JSON request");
        for resource in request["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let mut span = span.clone();
                    span["_resource"] = resource["resource"].clone();
                    out.push(span);
                }
            }
        }
    }
    out
}

/// A span attribute's string value.
fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]["stringValue"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_passes_are_exported_as_traces_with_the_status_trace_id() {
    let received: Received = Arc::default();
    let endpoint = collector(received.clone()).await;
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace(NS).await;
    let log = c.home.join("operator.log");
    let file = std::fs::File::create(&log).unwrap();
    let _operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
        .args([
            "run",
            "--cloud",
            "sim",
            "--sim-time-scale",
            "0.01",
            "--kubeconfig",
            c.cluster.kubeconfig_path().to_str().unwrap(),
            "--namespace",
            NS,
            "--metrics-addr",
            "127.0.0.1:0",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-protocol",
            "http/json",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .kill_on_drop(true)
        .spawn()
        .expect("the operator binary starts");

    let stack = std::fs::read_to_string(repo("examples/stack.yaml")).unwrap();
    let manifest = c.home.join("network.yaml");
    std::fs::write(&manifest, stack.split("\n---").next().unwrap()).unwrap();
    c.kubectl_ok(&["apply", "-n", NS, "-f", manifest.to_str().unwrap()])
        .await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("hnet/{NAME}"),
        "-n",
        NS,
        "--timeout=180s",
    ])
    .await;
    let api = Api::<HipaaNetwork>::namespaced(c.client(), NS);
    let trace_id = api
        .get(NAME)
        .await
        .unwrap()
        .status
        .unwrap()
        .common
        .trace_id
        .expect("the status names its pass's trace id");

    // The batch exporter sends every few seconds: wait for that pass's span.
    let span = eventually(
        Duration::from_secs(120),
        "the Ready pass's span at the collector",
        || {
            let received = received.clone();
            let trace_id = trace_id.clone();
            async move {
                spans(&received)
                    .into_iter()
                    .find(|s| s["name"] == "reconcile" && s["traceId"] == trace_id.as_str())
            }
        },
    )
    .await;
    assert_eq!(attribute(&span, "kind"), Some("HipaaNetwork"), "{span}");
    assert_eq!(attribute(&span, "namespace"), Some(NS), "{span}");
    assert_eq!(attribute(&span, "name"), Some(NAME), "{span}");
    assert_eq!(
        attribute(&span, "trace_id"),
        Some(trace_id.as_str()),
        "{span}"
    );
    let service = span["_resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "service.name")
        .map(|a| a["value"]["stringValue"].clone());
    assert_eq!(service, Some(Value::from("hipaa-operator")), "{span}");
    // Every pass is a trace of its own: no two reconcile spans share a trace.
    let all = spans(&received);
    let reconciles: Vec<&Value> = all.iter().filter(|s| s["name"] == "reconcile").collect();
    let mut ids: Vec<&str> = reconciles
        .iter()
        .map(|s| s["traceId"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), reconciles.len(), "one trace per pass");
}
