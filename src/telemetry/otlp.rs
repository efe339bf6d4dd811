//! Optional export of the operator's spans over OTLP/HTTP (Jaeger, Tempo, an
//! OpenTelemetry Collector), off unless an endpoint is given.
//!
//! Guarantees: each reconcile pass is one trace whose id is the pass's `traceId` (the one
//! in the custom resource's status, its events and its log lines), so a trace found from
//! a status or an event is the one the collector shows. Spans are batched and sent from a
//! tokio task; an unreachable collector costs dropped spans, never a blocked reconcile.
//! Caveats: plain HTTP only (the exporter's hyper client has no TLS); send to a
//! collector next to the operator (a sidecar or an in-cluster Service) and let it
//! forward over TLS. Spans still buffered when the process is killed are lost; a normal
//! shutdown flushes them ([`Exporter::shutdown`]).

use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The OTLP/HTTP body encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OtlpProtocol {
    /// Protocol buffers (OTLP's default, `http/protobuf`).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
    /// JSON (`http/json`).
    #[value(name = "http/json")]
    HttpJson,
}

/// Where and how to send spans.
#[derive(Clone, Debug)]
pub struct OtlpConfig {
    /// The collector's base URL (`http://otel-collector:4318`); `/v1/traces` is added.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// `service.name` of the exported resource.
    pub service_name: String,
}

/// Errors building the exporter, each naming what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error(
        "--otlp-endpoint {0:?}: must be an http:// URL (the exporter has no TLS; send to a collector next to the operator)"
    )]
    NotHttp(String),
    #[error("--otlp-endpoint {0:?}: {1}")]
    Exporter(String, String),
}

/// The running exporter; [`shutdown`](Self::shutdown) flushes what is buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Starts the exporter (needs a tokio runtime) and returns it with the tracing layer
    /// that feeds it.
    pub fn start<S>(
        config: &OtlpConfig,
    ) -> Result<(Exporter, impl tracing_subscriber::Layer<S>), OtlpError>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let url = traces_url(&config.endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url.clone())
            .with_protocol(match config.protocol {
                OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
                OtlpProtocol::HttpJson => Protocol::HttpJson,
            })
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OtlpError::Exporter(config.endpoint.clone(), e.to_string()))?;
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("hipaa-operator");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer);
        Ok((Exporter { provider }, layer))
    }

    /// Sends what is buffered and stops. Blocks the calling thread until the batch task
    /// answers, so it runs on a blocking thread.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

/// `endpoint` + `/v1/traces`, refusing anything but `http://`.
fn traces_url(endpoint: &str) -> Result<String, OtlpError> {
    if !endpoint.starts_with("http://") {
        return Err(OtlpError::NotHttp(endpoint.to_string()));
    }
    Ok(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
}

/// Makes `span` (a reconcile pass) the root of the trace `trace_id` (32 hex digits), so
/// the exported trace carries the id the status and events show. Without the exporter's
/// layer this does nothing.
pub fn adopt_trace_id(span: &tracing::Span, trace_id: &str) {
    let Ok(trace) = TraceId::from_hex(trace_id) else {
        return;
    };
    // A remote parent that is never exported: only its trace id is used.
    let parent = SpanContext::new(
        trace,
        SpanId::from_bytes(fastrand::u64(1..).to_be_bytes()),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let context = opentelemetry::Context::new().with_remote_span_context(parent);
    let _ = span.set_parent(context);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_base_urls_over_plain_http() {
        // Each row: the flag's value, the URL spans go to (or the refusal).
        let rows = [
            (
                "http://collector:4318",
                Ok("http://collector:4318/v1/traces"),
            ),
            (
                "http://collector:4318/",
                Ok("http://collector:4318/v1/traces"),
            ),
            ("https://collector:4318", Err("must be an http:// URL")),
            ("collector:4318", Err("must be an http:// URL")),
        ];
        for (flag, want) in rows {
            match (traces_url(flag), want) {
                (Ok(url), Ok(expected)) => assert_eq!(url, expected, "{flag}"),
                (Err(e), Err(message)) => {
                    let text = e.to_string();
                    assert!(
                        text.contains(message) && text.contains("--otlp-endpoint"),
                        "{text}"
                    );
                }
                (got, want) => panic!("{flag}: {got:?} vs {want:?}"),
            }
        }
    }
}
