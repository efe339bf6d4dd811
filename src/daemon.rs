//! `hipaa-operator run`: preflight checks, the metrics server, leader election and the
//! controllers, until SIGTERM/Ctrl-C (or, for a leader, the loss of its lease).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};

use crate::controller::leader::LeaderElection;
use crate::controller::{self, Context, Regions, Runner, Settings};
use crate::telemetry::{self, Health, Metrics, Readiness};

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct Election {
    pub namespace: String,
    pub lease_name: String,
    pub lease_duration: Duration,
}

/// Everything `run` needs besides the cluster client and the providers.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub settings: Settings,
    pub metrics_addr: SocketAddr,
    pub election: Option<Election>,
    /// This replica's name in events and the lease (the pod name in a cluster).
    pub identity: String,
}

/// A running operator, for callers that embed it (the demo, tests).
pub struct Running {
    pub metrics_addr: SocketAddr,
    pub context: Arc<Context>,
    pub health: Health,
}

/// Refuses to start when a hipaa.dev CRD is not installed: listing its kind is a 404.
/// Every kind is checked, so a cluster with an older, partial set of CRDs is caught here
/// rather than by a controller whose watch fails.
pub async fn check_crds(client: &kube::Client, namespace: Option<&str>) -> anyhow::Result<()> {
    for crd in crate::api::crds() {
        let resource = ApiResource {
            group: crd.spec.group.clone(),
            version: crd.spec.versions[0].name.clone(),
            api_version: format!("{}/{}", crd.spec.group, crd.spec.versions[0].name),
            kind: crd.spec.names.kind.clone(),
            plural: crd.spec.names.plural.clone(),
        };
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        let name = format!(
            "{}.{}/{}",
            resource.plural, resource.group, resource.version
        );
        match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => bail!(
                "the hipaa.dev CRDs are not installed in this cluster (listing {name} \
                 returned 404): install them with `kubectl apply -f crds/hipaa.dev.yaml` or \
                 `hipaa-operator crds | kubectl apply -f -`, then start the operator again"
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("listing {name} to check that the CRDs are installed")
                });
            }
        }
    }
    Ok(())
}

/// Refuses to start without AWS credentials (the default chain: env, profile, IRSA).
pub async fn check_aws_credentials(config: &aws_config::SdkConfig) -> anyhow::Result<()> {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = config.credentials_provider() else {
        bail!("no AWS credentials provider is configured")
    };
    provider.provide_credentials().await.map_err(|e| {
        anyhow::anyhow!(
            "no AWS credentials found ({e}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
             AWS_PROFILE, or run with an IAM role for the service account (IRSA)"
        )
    })?;
    Ok(())
}

/// Runs the operator until `stop` resolves. Returns an error when leadership was lost
/// (the process should exit and be restarted as a standby).
pub async fn run(
    client: kube::Client,
    clouds: Regions,
    options: RunOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let running = start_serving(client.clone(), clouds, &options).await?;
    tracing::info!(metrics = %running.metrics_addr, identity = %options.identity, "serving /metrics /healthz /readyz");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let Some(election) = &options.election else {
        running.context.metrics.leader.set(1);
        controller::run(
            running.context.clone(),
            running.health.clone(),
            stopped(stop_rx),
        )
        .await;
        return Ok(());
    };
    let elector = LeaderElection::new(
        client,
        &election.namespace,
        &election.lease_name,
        &options.identity,
        election.lease_duration,
    );
    running.health.set(Readiness::Standby);
    running.context.metrics.leader.set(0);
    tracing::info!(lease = %election.lease_name, namespace = %election.namespace, "waiting for the leader lease");
    tokio::select! {
        _ = elector.acquire() => {}
        _ = stopped(stop_rx.clone()) => return Ok(()),
    }
    tracing::info!(lease = %election.lease_name, "leader lease acquired");
    running.context.metrics.leader.set(1);
    let (mut lost, renewing) = elector.hold();
    let mut lost_wait = lost.clone();
    let stop_or_lost = {
        let stop_rx = stop_rx.clone();
        async move {
            tokio::select! {
                _ = stopped(stop_rx) => {}
                _ = lost_wait.wait_for(|v| *v) => {}
            }
        }
    };
    running.health.set(Readiness::Starting);
    controller::run(
        running.context.clone(),
        running.health.clone(),
        stop_or_lost,
    )
    .await;
    running.context.metrics.leader.set(0);
    renewing.abort();
    if *lost.borrow_and_update() {
        bail!("leader lease lost: stopping so that only one replica acts on AWS");
    }
    if let Err(error) = elector.release().await {
        tracing::warn!(%error, "releasing the leader lease");
    }
    Ok(())
}

/// The context, metrics server and health, before any controller runs.
pub async fn start_serving(
    client: kube::Client,
    clouds: Regions,
    options: &RunOptions,
) -> anyhow::Result<Running> {
    let metrics = Arc::new(Metrics::new());
    let context = Arc::new(Context::new(
        client,
        options.settings.clone(),
        metrics.clone(),
        clouds,
        Some(options.identity.clone()),
    ));
    let health = Health::default();
    let refresh_context = context.clone();
    let (metrics_addr, _server) = telemetry::serve(
        options.metrics_addr,
        metrics,
        health.clone(),
        Arc::new(move || refresh_context.export_calls()),
    )
    .await
    .with_context(|| format!("binding the metrics address {}", options.metrics_addr))?;
    Ok(Running {
        metrics_addr,
        context,
        health,
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A replica name, unique per process: `POD_NAME` when set (unique in a Deployment),
/// else the host name with a random suffix (two replicas on one host must differ).
pub fn default_identity() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "hipaa-operator".into());
        format!("{host}-{}", &random[..8])
    })
}

/// An operator running in this process without leader election (the demo, tests).
pub struct Spawned {
    pub running: Running,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Spawned {
    /// Stops the controller (in-flight reconciles finish first).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Starts the metrics server and the controllers in the background.
pub async fn spawn(
    client: kube::Client,
    clouds: Regions,
    options: &RunOptions,
) -> anyhow::Result<Spawned> {
    spawn_with(client, clouds, options, |runner| runner).await
}

/// [`spawn`] with more controllers: `extend` adds kinds to the operator's own (tests
/// add a kind of their own to exercise references).
pub async fn spawn_with(
    client: kube::Client,
    clouds: Regions,
    options: &RunOptions,
    extend: impl FnOnce(Runner) -> Runner,
) -> anyhow::Result<Spawned> {
    let running = start_serving(client, clouds, options).await?;
    running.context.metrics.leader.set(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = extend(Runner::new(running.context.clone()));
    let task = tokio::spawn(runner.run(running.health.clone(), async move {
        let _ = stopped.await;
    }));
    Ok(Spawned {
        running,
        stop,
        task,
    })
}
