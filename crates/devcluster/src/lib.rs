//! An embedded Kubernetes API server that `kubectl` and kube-rs accept as real, for the
//! demo and the tests (production runs on a real cluster).
//!
//! It serves discovery and OpenAPI, the built-in kinds the operator and kubectl use and
//! every CRD created in it, with the real server's verbs and object semantics: watches
//! with resourceVersions and 410 Gone, optimistic concurrency, merge/JSON/strategic
//! patches and server-side apply with managedFields, status subresources, finalizers and
//! garbage collection, and CRD schemas enforced (defaults, pruning, OpenAPI and CEL).
//!
//! Request bodies in JSON, YAML, or Kubernetes protobuf for the built-in kinds (what
//! kubectl's typed clients send); responses are JSON.
//!
//! Caveats: one process, one lock (simple and strictly ordered, not a scale-out store);
//! no CBOR, and no protobuf responses; authentication is one bearer token, with no
//! authorization beyond it.
//!
//! It knows nothing of hipaa.dev: the operator's crate re-exports it as
//! `hipaa_operator::devcluster`, and [`validation`] (a CRD schema applied as the API
//! server does) as `hipaa_operator::api::validation`.

pub mod apimachinery;
mod events;
mod gc;
mod handlers;
mod managed_fields;
mod openapi;
mod protobuf;
mod registry;
mod server;
mod status;
mod store;
mod table;
pub mod validation;
mod writes;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use serde_json::json;
use tokio::task::JoinHandle;

pub use store::HISTORY;

/// How to start a devcluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// Address to serve on; port 0 picks a free one. Always served over TLS with a CA
    /// generated at start (in the kubeconfig).
    pub listen: SocketAddr,
    /// Where to write the kubeconfig; default `devcluster.kubeconfig` in the data
    /// directory, or in a new temporary directory.
    pub kubeconfig: Option<PathBuf>,
    /// Persist state here (crash-safe, survives restarts); in memory when None.
    pub data_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            data_dir: None,
        }
    }
}

/// A running devcluster. Dropping it without [`DevCluster::shutdown`] stops serving
/// when the runtime ends.
pub struct DevCluster {
    url: String,
    kubeconfig: PathBuf,
    client: kube::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    serve: Option<JoinHandle<()>>,
    gc: JoinHandle<()>,
    server: Arc<server::Server>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("devcluster storage: {0}")]
    Store(String),
    #[error("devcluster: {0}")]
    Io(#[from] std::io::Error),
    #[error("devcluster TLS: {0}")]
    Tls(String),
    #[error("devcluster client: {0}")]
    Client(String),
}

const NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

impl DevCluster {
    /// Starts serving and returns once requests are answered.
    pub async fn start(options: Options) -> Result<Self, StartError> {
        let store = store::Store::open(options.data_dir.as_deref()).map_err(StartError::Store)?;
        {
            let mut state = store.lock();
            for ns in NAMESPACES {
                if state.get("namespaces", "", ns).is_none() {
                    let namespace = json!({
                        "apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": ns, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": writes::now(), "labels": {"kubernetes.io/metadata.name": ns}},
                        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
                    });
                    state
                        .put("namespaces", "", ns, namespace)
                        .map_err(StartError::Store)?;
                }
            }
        }
        let token = token(options.data_dir.as_deref())?;
        let server = Arc::new(server::Server {
            store,
            token: token.clone(),
            gc: tokio::sync::Notify::new(),
        });
        let app = axum::Router::new()
            .fallback(server::handle)
            .with_state(server.clone());

        let kubeconfig = match (&options.kubeconfig, &options.data_dir) {
            (Some(path), _) => path.clone(),
            (None, Some(dir)) => dir.join("devcluster.kubeconfig"),
            (None, None) => std::env::temp_dir()
                .join(format!(
                    "hipaa-devcluster-{}",
                    uuid::Uuid::new_v4().simple()
                ))
                .join("devcluster.kubeconfig"),
        };
        if let Some(parent) = kubeconfig.parent() {
            std::fs::create_dir_all(parent)?;
        }

        let listener = std::net::TcpListener::bind(options.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        // Always TLS, loopback included: kubectl sends bearer tokens only over HTTPS, and
        // the token then never crosses a socket in clear text.
        let dir = kubeconfig.parent().unwrap_or(Path::new(".")).to_path_buf();
        let (config, ca_pem) = tls_config(addr, &dir).await?;
        let handle = axum_server::Handle::new();
        let stopper = handle.clone();
        tokio::spawn(async move {
            let _ = shutdown_rx.await;
            stopper.graceful_shutdown(Some(std::time::Duration::from_secs(1)));
        });
        let serving = axum_server::from_tcp_rustls(listener, config)
            .handle(handle)
            .serve(app.into_make_service());
        let serve = tokio::spawn(async move {
            if let Err(e) = serving.await {
                eprintln!("devcluster: server stopped: {e}");
            }
        });
        let url = format!("https://{addr}");
        let ca_pem = Some(ca_pem);
        write_kubeconfig(&kubeconfig, &url, &token, ca_pem.as_deref())?;
        let gc = tokio::spawn(gc::run(server.clone()));
        let client = client_for(&kubeconfig).await?;
        Ok(Self {
            url,
            kubeconfig,
            client,
            shutdown: Some(shutdown_tx),
            serve: Some(serve),
            gc,
            server,
        })
    }

    /// Forgets the watch history (like an etcd compaction): watches resuming from an
    /// older resourceVersion get 410 Gone. For tests of clients' re-list behaviour.
    pub fn compact(&self) {
        self.server.store.lock().compact();
    }

    /// A kube-rs client authenticated to this cluster.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops serving (open watches end) and waits for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.gc.abort();
        if let Some(serve) = self.serve.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), serve).await;
        }
    }
}

/// A new bearer token; with a data directory, the one kept there, so kubeconfigs stay
/// valid across restarts.
fn token(data_dir: Option<&Path>) -> Result<String, StartError> {
    let fresh = || {
        format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )
    };
    let Some(dir) = data_dir else {
        return Ok(fresh());
    };
    let path = dir.join("token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_string()),
        _ => {
            let token = fresh();
            std::fs::write(&path, &token)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(token)
        }
    }
}

/// A kube-rs client from a kubeconfig file.
pub async fn client_for(kubeconfig: &Path) -> Result<kube::Client, StartError> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .map_err(|e| StartError::Client(e.to_string()))?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| StartError::Client(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| StartError::Client(e.to_string()))
}

fn write_kubeconfig(
    path: &Path,
    url: &str,
    token: &str,
    ca_pem: Option<&str>,
) -> Result<(), StartError> {
    let mut cluster = json!({"server": url});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hipaa-devcluster", "cluster": cluster}],
        "users": [{"name": "hipaa-devcluster", "user": {"token": token}}],
        "contexts": [{"name": "hipaa-devcluster", "context": {"cluster": "hipaa-devcluster", "user": "hipaa-devcluster", "namespace": "default"}}],
        "current-context": "hipaa-devcluster",
        "preferences": {},
    });
    let text = serde_yaml_ng::to_string(&config).map_err(|e| StartError::Client(e.to_string()))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A CA and a server certificate for the listen address signed by it, written next to
/// the kubeconfig (`devcluster-ca.crt`, `devcluster.crt`, `devcluster.key`). Returns the
/// server config and the CA in PEM, for the kubeconfig.
async fn tls_config(
    addr: SocketAddr,
    dir: &Path,
) -> Result<(axum_server::tls_rustls::RustlsConfig, String), StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = |e: rcgen::Error| StartError::Tls(e.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hipaa-devcluster-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = ca_params.self_signed(&ca_key).map_err(tls)?;

    let mut names = vec!["localhost".to_string(), addr.ip().to_string()];
    if !addr.ip().is_loopback() {
        names.push("127.0.0.1".to_string());
    }
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut params = rcgen::CertificateParams::new(names).map_err(tls)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hipaa-devcluster");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca, &ca_key).map_err(tls)?;

    let ca_pem = ca.pem();
    std::fs::write(dir.join("devcluster-ca.crt"), &ca_pem)?;
    std::fs::write(dir.join("devcluster.crt"), cert.pem())?;
    let key_path = dir.join("devcluster.key");
    std::fs::write(&key_path, key.serialize_pem())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
    }
    let config = axum_server::tls_rustls::RustlsConfig::from_der(
        vec![cert.der().to_vec(), ca.der().to_vec()],
        key.serialize_der(),
    )
    .await?;
    Ok((config, ca_pem))
}
