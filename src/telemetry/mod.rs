//! Logging, the Prometheus registry and the `/metrics`, `/healthz`, `/readyz` server.

pub mod metrics;
pub mod otlp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

pub use metrics::Metrics;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log pipelines).
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the global tracing subscriber; `RUST_LOG` overrides the default `info` level.
/// A second call is a no-op (tests start several operators in one process).
pub fn init_tracing(format: LogFormat) {
    let _ = install(format, None);
}

/// [`init_tracing`], and with `otlp`, an exporter of the spans over OTLP (needs a tokio
/// runtime). The exporter is returned to be shut down (flushed) at exit.
pub fn init_tracing_with_otlp(
    format: LogFormat,
    otlp: Option<&otlp::OtlpConfig>,
) -> Result<Option<otlp::Exporter>, otlp::OtlpError> {
    install(format, otlp)
}

fn install(
    format: LogFormat,
    otlp: Option<&otlp::OtlpConfig>,
) -> Result<Option<otlp::Exporter>, otlp::OtlpError> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    type Filtered = tracing_subscriber::layer::Layered<
        tracing_subscriber::EnvFilter,
        tracing_subscriber::Registry,
    >;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let mut layers: Vec<Box<dyn Layer<Filtered> + Send + Sync>> = vec![match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Text => fmt.with_ansi(false).boxed(),
    }];
    let mut exporter = None;
    if let Some(config) = otlp {
        let (started, layer) = otlp::Exporter::start::<Filtered>(config)?;
        layers.push(layer.boxed());
        exporter = Some(started);
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    Ok(exporter)
}

/// What `/readyz` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Readiness {
    /// Starting: caches are not synced yet.
    Starting = 0,
    /// A replica waiting for the leader lease: healthy and ready to take over.
    Standby = 1,
    /// The controller's caches are synced.
    Ready = 2,
}

/// Health shared between the controller and the HTTP server.
#[derive(Clone, Default)]
pub struct Health {
    state: Arc<AtomicU8>,
}

impl Health {
    pub fn set(&self, readiness: Readiness) {
        self.state.store(readiness as u8, Ordering::SeqCst);
    }

    pub fn get(&self) -> Readiness {
        match self.state.load(Ordering::SeqCst) {
            1 => Readiness::Standby,
            2 => Readiness::Ready,
            _ => Readiness::Starting,
        }
    }
}

#[derive(Clone)]
struct Served {
    metrics: Arc<Metrics>,
    health: Health,
    /// Called before `/metrics` renders (brings AWS call counters up to date).
    refresh: Arc<dyn Fn() + Send + Sync>,
}

/// Binds `addr` and serves `/metrics` (Prometheus text), `/healthz` (200 while the process
/// runs) and `/readyz` (200 once caches are synced or while standing by for the lease,
/// 503 before). Returns the bound address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Health,
    refresh: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready_handler))
        .with_state(Served {
            metrics,
            health,
            refresh,
        });
    let handle = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "metrics server stopped");
        }
    });
    Ok((bound, handle))
}

async fn metrics_handler(State(served): State<Served>) -> impl IntoResponse {
    (served.refresh)();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        served.metrics.render(),
    )
}

async fn ready_handler(State(served): State<Served>) -> impl IntoResponse {
    match served.health.get() {
        Readiness::Ready => (StatusCode::OK, "ready"),
        Readiness::Standby => (StatusCode::OK, "standby: waiting for the leader lease"),
        Readiness::Starting => (StatusCode::SERVICE_UNAVAILABLE, "caches not synced"),
    }
}
