//! The kube-rs controllers: one generic controller run once per custom-resource kind
//! (each kind a [`Stack`]), a thin `reconcile` that hands Apply and Cleanup to
//! kube-runtime's finalizer helper, one [`Context`] (client, metrics, event recorder,
//! providers), one [`Error`] enum whose fixed categories label metrics and events.
//!
//! Triggers: a change of the spec (generation), the `hipaa.dev/paused` annotation, the
//! finalizers or the deletion timestamp reconciles at once; status writes (the operator's
//! own) do not, so a pass never triggers another pass. A referenced object becoming Ready
//! or changing its outputs reconciles its referrers at once, and a referrer's removal its
//! target (see [`references`]). Every reconcile ends with a requeue (see [`error_policy`]
//! and `reconcile::apply`), which bounds drift detection by the resync interval.

mod events;
pub mod leader;
pub mod network;
mod pass_metrics;
mod payment;
mod reconcile;
pub mod references;
pub mod stack;
pub mod status;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::{BoxFuture, FutureExt};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;

use crate::api::{HipaaNetwork, PaymentPipeline};
use crate::cloud::any::AnyCloud;
use crate::cloud::{CloudError, Provider};
use crate::telemetry::{Health, Metrics, Readiness};
pub use stack::Stack;
use stack::object_key;

/// The finalizer every hipaa.dev object carries until its AWS resources are gone.
pub const FINALIZER: &str = "hipaa.dev/cleanup";
/// `"true"` stops all AWS changes for the object (it is still observed and reported).
pub const PAUSED_ANNOTATION: &str = "hipaa.dev/paused";
/// Field manager and event reporter.
pub const MANAGER: &str = "hipaa-operator";

/// How the controllers behave.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A Ready object is observed again this often: the bound on drift detection.
    pub resync: Duration,
    /// An object waiting on an asynchronous AWS state (NAT pending) is looked at again
    /// after this long.
    pub pending_requeue: Duration,
    /// First backoff after a failed pass; doubled per consecutive failure, jittered.
    pub backoff_base: Duration,
    /// Longest backoff.
    pub backoff_cap: Duration,
    /// Objects reconciled at once.
    pub concurrency: u16,
    /// Watch one namespace, or all when None.
    pub namespace: Option<String>,
    pub engine: crate::engine::Config,
    /// Compliance control LOG-1's floor.
    pub min_log_retention_days: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            resync: Duration::from_secs(60),
            pending_requeue: Duration::from_secs(5),
            backoff_base: Duration::from_secs(5),
            backoff_cap: Duration::from_secs(300),
            concurrency: 4,
            namespace: None,
            engine: crate::engine::Config::default(),
            min_log_retention_days: 365,
        }
    }
}

/// One provider per AWS region, made on first use and kept.
pub struct Regions {
    make: Box<dyn Fn(&str) -> AnyCloud + Send + Sync>,
    made: Mutex<BTreeMap<String, AnyCloud>>,
}

impl Regions {
    pub fn new(make: impl Fn(&str) -> AnyCloud + Send + Sync + 'static) -> Self {
        Regions {
            make: Box::new(make),
            made: Mutex::new(BTreeMap::new()),
        }
    }

    /// The provider of `region`.
    pub fn get(&self, region: &str) -> AnyCloud {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.entry(region.to_string())
            .or_insert_with(|| (self.make)(region))
            .clone()
    }

    /// Every provider made so far, by region.
    pub fn all(&self) -> Vec<(String, AnyCloud)> {
        let made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.iter().map(|(r, c)| (r.clone(), c.clone())).collect()
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub settings: Settings,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub clouds: Regions,
    /// Consecutive failed passes per object (`Kind/namespace/name`), for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// AWS resources per object (`Kind/namespace/name`), summed per kind into
    /// `hipaa_operator_managed_resources`.
    managed: Mutex<HashMap<String, i64>>,
    /// Which kinds reference which, registered by the [`Runner`] before controllers start.
    edges: Mutex<Vec<references::Edge>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        clouds: Regions,
        instance: Option<String>,
    ) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance,
            },
        );
        Context {
            client,
            settings,
            metrics,
            recorder,
            clouds,
            failures: Mutex::new(HashMap::new()),
            managed: Mutex::new(HashMap::new()),
            edges: Mutex::new(Vec::new()),
        }
    }

    /// The registered edges of kinds that reference `kind`.
    pub fn edges_to(&self, kind: &str) -> Vec<references::Edge> {
        self.edges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e.target.kind == kind)
            .cloned()
            .collect()
    }

    /// Brings `hipaa_operator_aws_api_calls_total` up to date with the providers' counts.
    pub fn export_calls(&self) {
        for (region, cloud) in self.clouds.all() {
            self.metrics.export_calls(&region, &cloud.calls());
        }
    }

    fn failed(&self, key: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Records how many AWS resources the object `key` (`Kind/namespace/name`, of
    /// `kind`) manages (`None`: the object is gone), and exports the kind's total.
    fn set_managed(&self, kind: &str, key: &str, count: Option<i64>) {
        let mut managed = self.managed.lock().unwrap_or_else(|p| p.into_inner());
        match count {
            Some(n) => managed.insert(key.to_string(), n),
            None => managed.remove(key),
        };
        let prefix = format!("{kind}/");
        let total: i64 = managed
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum();
        self.metrics
            .managed_resources
            .with_label_values(&[kind])
            .set(total);
    }

    /// The delay before retrying after the `failures`-th consecutive failure: `base *
    /// 2^(failures-1)`, capped, with "equal jitter" (half fixed, half random) so replicas
    /// of a failure do not retry in lockstep.
    pub fn backoff(&self, failures: u32) -> Duration {
        backoff(
            self.settings.backoff_base,
            self.settings.backoff_cap,
            failures,
        )
    }
}

fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(cap);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// Every way a reconcile fails, each with a fixed category.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The spec passed the schema but cannot be built (e.g. subnets do not fit).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// AWS refused or failed a call the pass needed (after in-pass retries).
    #[error("AWS: {0}")]
    Cloud(CloudError),
    /// Deletion is under way; AWS resources remain.
    #[error("deleting: {0} AWS resource(s) remain")]
    CleanupPending(usize),
    /// Deletion waits while the object is paused.
    #[error("deletion paused by the hipaa.dev/paused annotation")]
    PausedDeletion,
    /// Deletion waits while other objects reference this one.
    #[error("deletion waits for {0} object(s) that reference this one")]
    DependentsExist(usize),
}

impl Error {
    /// A fixed, low-cardinality category for metric labels (never the error's text).
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_api",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.category(),
                _ => "finalizer",
            },
            Error::InvalidSpec(_) => "invalid_spec",
            Error::Cloud(e) => match e {
                CloudError::Throttled { .. } => "aws_throttled",
                CloudError::Server { .. } => "aws_server_error",
                CloudError::DependencyViolation { .. } => "aws_dependency_violation",
                CloudError::NotFound { .. } => "aws_not_found",
                CloudError::Terminal { .. } => "aws_client_error",
            },
            Error::CleanupPending(_) => "cleanup_pending",
            Error::PausedDeletion => "paused",
            Error::DependentsExist(_) => "dependents_exist",
        }
    }

    /// The error the finalizer helper wrapped, if any.
    fn inner(&self) -> &Error {
        match self {
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.inner(),
                _ => self,
            },
            other => other,
        }
    }
}

/// Whether the object carries `hipaa.dev/paused: "true"`.
pub fn is_paused<K: Resource>(object: &K) -> bool {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// What makes a watch event worth a reconcile: the spec (generation), the paused
/// annotation, the finalizers and deletion. Status and other metadata changes are not.
fn trigger_hash<K: Resource>(object: &K) -> Option<u64> {
    let meta = object.meta();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    is_paused(object).hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

tokio::task_local! {
    /// The trace id of the reconcile this task runs.
    static TRACE_ID: String;
}

/// The trace id of the reconcile running on this task, if any: 32 hex digits, the W3C
/// trace-id format, stamped on the pass's span, events and status write.
pub fn current_trace_id() -> Option<String> {
    TRACE_ID.try_with(Clone::clone).ok()
}

/// The one reconcile of every kind: a span with a fresh trace id around it, then
/// [`reconcile_pass`].
async fn reconcile<K: Stack>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    use tracing::Instrument;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!(
        "reconcile",
        kind = K::KIND,
        namespace = %object.namespace().unwrap_or_default(),
        name = %object.name_any(),
        generation = object.meta().generation.unwrap_or_default(),
        trace_id = %trace_id,
    );
    // Exported over OTLP (when on), the pass is a trace with this same id.
    crate::telemetry::otlp::adopt_trace_id(&span, &trace_id);
    TRACE_ID
        .scope(trace_id, reconcile_pass(object, ctx).instrument(span))
        .await
}

/// Hands Apply and Cleanup to the finalizer helper, times the pass and counts its result.
async fn reconcile_pass<K: Stack>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let timer = ctx
        .metrics
        .reconcile_duration
        .with_label_values(&[K::KIND])
        .start_timer();
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, object, |event| async {
        match event {
            Finalizer::Apply(object) => reconcile::apply(object, &ctx).await,
            Finalizer::Cleanup(object) => reconcile::cleanup(object, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    timer.observe_duration();
    ctx.export_calls();
    let label = match &result {
        Ok(_) => "success",
        Err(e) => e.category(),
    };
    ctx.metrics
        .reconcile_total
        .with_label_values(&[K::KIND, label])
        .inc();
    result
}

/// The requeue after a failed reconcile.
fn error_policy<K: Stack>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    match error.inner() {
        // Deleting: AWS deletes asynchronously (NAT gateways, instances); look again soon.
        Error::CleanupPending(_) => Action::requeue(ctx.settings.pending_requeue),
        // Paused deletion: removing the annotation triggers a reconcile at once.
        Error::PausedDeletion => Action::requeue(ctx.settings.resync),
        // Referrers hold the deletion: the removal of the last one triggers a reconcile
        // at once (a watch on the referring kinds); this is only the periodic look.
        Error::DependentsExist(_) => Action::requeue(ctx.settings.resync),
        // Everything else backs off exponentially to the cap: a persistent AccessDenied
        // costs one attempt per step, never a retry storm.
        other => {
            let key = object_key(object.as_ref());
            let failures = ctx.failed(&key);
            let delay = ctx.backoff(failures);
            tracing::warn!(object = %key, category = other.category(), error = %other, failures, delay_ms = delay.as_millis() as u64, "reconcile failed");
            Action::requeue(delay)
        }
    }
}

/// A shutdown signal every controller can wait on.
type Shutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// A controller of one kind, not yet started.
type Start =
    Box<dyn FnOnce(Arc<Context>, Shutdown, mpsc::Sender<()>) -> BoxFuture<'static, ()> + Send>;

/// The controllers one operator runs, one per kind, sharing one [`Context`]. Every
/// kind's reference edge is registered before any controller starts, so a referenced
/// kind's controller knows every kind that may hold its deletion.
pub struct Runner {
    ctx: Arc<Context>,
    controllers: Vec<Start>,
}

impl Runner {
    /// The controllers of the kinds the operator reconciles.
    pub fn new(ctx: Arc<Context>) -> Self {
        Runner {
            ctx,
            controllers: Vec::new(),
        }
        .with::<HipaaNetwork>()
        .with::<PaymentPipeline>()
    }

    /// Adds the controller of kind `K` (and its reference edge).
    pub fn with<K: Stack>(mut self) -> Self {
        if let Some(edge) = references::Edge::of::<K>() {
            self.ctx
                .edges
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(edge);
        }
        self.controllers.push(Box::new(|ctx, shutdown, ready| {
            run_kind::<K>(ctx, shutdown, ready).boxed()
        }));
        self
    }

    /// Runs every controller until `shutdown` resolves. Marks `health` ready once every
    /// kind's watch cache has its first full list.
    pub async fn run(
        self,
        health: Health,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let shutdown: Shutdown = shutdown.boxed().shared();
        let kinds = self.controllers.len();
        let (ready_tx, mut ready_rx) = mpsc::channel(kinds.max(1));
        let running: Vec<_> = self
            .controllers
            .into_iter()
            .map(|start| start(self.ctx.clone(), shutdown.clone(), ready_tx.clone()))
            .collect();
        drop(ready_tx);
        let ready = tokio::spawn(async move {
            for _ in 0..kinds {
                if ready_rx.recv().await.is_none() {
                    return;
                }
            }
            health.set(Readiness::Ready);
        });
        futures::future::join_all(running).await;
        ready.abort();
    }
}

/// Runs the controllers of every kind (see [`Runner::new`]) until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    health: Health,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    Runner::new(ctx).run(health, shutdown).await;
}

/// The controller of kind `K`: its own watch (filtered by [`trigger_hash`]), the watch of
/// its reference's kind, and the watches of the kinds that reference it.
async fn run_kind<K: Stack>(ctx: Arc<Context>, shutdown: Shutdown, ready: mpsc::Sender<()>) {
    let api: Api<K> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(trigger_hash, Default::default());
    let ready_reader = reader.clone();
    let ready_task = tokio::spawn(async move {
        // The store's readiness future wakes only its latest waiter (the controller's
        // runner also waits on it), so poll it again until it resolves.
        loop {
            let wait = ready_reader.wait_until_ready();
            match tokio::time::timeout(Duration::from_millis(200), wait).await {
                Ok(Ok(())) => {
                    let _ = ready.send(()).await;
                    break;
                }
                Ok(Err(_)) => break,
                Err(_) => continue,
            }
        }
    });
    let config = kube::runtime::controller::Config::default().concurrency(ctx.settings.concurrency);
    let mut controller = Controller::for_stream(stream, reader.clone()).with_config(config);
    if let Some(target) = K::TARGET {
        let (trigger, mapper) = references::target_trigger::<K>(&ctx, target, reader);
        controller = controller.watches_stream_with(trigger, mapper, (target.resource)());
    }
    for edge in ctx.edges_to(K::KIND) {
        let resource = edge.referrer.clone();
        let (trigger, mapper) = references::referrer_removed_trigger::<K>(&ctx, edge);
        controller = controller.watches_stream_with(trigger, mapper, resource);
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "reconcile");
            }
        })
        .await;
    ready_task.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_bounded_jitter() {
        let base = Duration::from_secs(5);
        let cap = Duration::from_secs(300);
        // (failures, lower bound, upper bound): each row proves one step of the schedule.
        let rows = [
            (1, 2.5, 5.0),
            (2, 5.0, 10.0),
            (3, 10.0, 20.0),
            (6, 80.0, 160.0),
            (7, 150.0, 300.0),
            (40, 150.0, 300.0),
        ];
        for (failures, low, high) in rows {
            for _ in 0..50 {
                let d = backoff(base, cap, failures).as_secs_f64();
                assert!(
                    d >= low && d <= high,
                    "failure {failures}: {d}s not in [{low}, {high}]"
                );
            }
        }
    }

    /// A context whose client points nowhere (nothing here calls the API server).
    fn offline_context() -> Context {
        // Both rustls providers are in the build: name the process-wide one, as main does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).expect("a client builds offline");
        let sim = crate::cloud::sim::SimCloud::new(crate::cloud::sim::SimConfig::fast());
        Context::new(
            client,
            Settings::default(),
            Arc::new(Metrics::new()),
            Regions::new(move |_| AnyCloud::Sim(sim.clone())),
            None,
        )
    }

    #[tokio::test]
    async fn managed_counts_and_backoff_are_kept_per_kind_not_per_name() {
        let ctx = offline_context();
        let gauge = |kind: &str| {
            ctx.metrics
                .managed_resources
                .with_label_values(&[kind])
                .get()
        };
        // Two kinds share a namespace and a name: each kind's gauge counts its own.
        ctx.set_managed("HipaaNetwork", "HipaaNetwork/clinic/prod", Some(20));
        ctx.set_managed("PaymentPipeline", "PaymentPipeline/clinic/prod", Some(9));
        ctx.set_managed("HipaaNetwork", "HipaaNetwork/clinic/other", Some(3));
        assert_eq!(gauge("HipaaNetwork"), 23);
        assert_eq!(gauge("PaymentPipeline"), 9);
        ctx.set_managed("PaymentPipeline", "PaymentPipeline/clinic/prod", None);
        assert_eq!(gauge("PaymentPipeline"), 0);
        assert_eq!(
            gauge("HipaaNetwork"),
            23,
            "the other kind's count is untouched"
        );
        // Failures of one kind's object do not lengthen the other's backoff.
        assert_eq!(ctx.failed("HipaaNetwork/clinic/prod"), 1);
        assert_eq!(ctx.failed("HipaaNetwork/clinic/prod"), 2);
        assert_eq!(ctx.failed("PaymentPipeline/clinic/prod"), 1);
        ctx.succeeded("HipaaNetwork/clinic/prod");
        assert_eq!(ctx.failed("HipaaNetwork/clinic/prod"), 1);
    }

    #[test]
    fn error_categories_are_fixed_strings() {
        let denied = Error::Cloud(CloudError::Terminal {
            operation: "CreateVpc".into(),
            code: "AccessDenied".into(),
            message: "User arn:aws:iam::1:user/x is not authorized".into(),
        });
        assert_eq!(denied.category(), "aws_client_error");
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(
            denied,
        )));
        assert_eq!(wrapped.category(), "aws_client_error");
        assert!(matches!(wrapped.inner(), Error::Cloud(_)));
        assert_eq!(Error::CleanupPending(3).category(), "cleanup_pending");
    }
}
