//! Generic reconcile engine: a desired graph + a provider -> observe, diff (drift), plan,
//! apply in dependency order with bounded parallelism, and delete in reverse order.
//!
//! One call is one *pass*: it never waits for an asynchronous AWS state (NAT gateway
//! pending, instance starting). A node in such a state holds only its dependents; the
//! pass ends when nothing more can be done and says whether everything is ready, so the
//! caller requeues soon instead of blocking a worker. Retryable errors (throttling, 5xx)
//! are retried inside the pass with jittered exponential backoff up to a few attempts;
//! terminal errors stop only the failing node and its dependents.

pub mod diff;
pub mod resolve;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::blueprint::{BlueprintError, Graph, Node};
use crate::cloud::{
    CloudError, DeleteMode, Desired, Kind, Lookup, Observed, Owned, Owner, Provider, State, audit,
    ownership_tags,
};
pub use diff::FieldDrift;
use resolve::{Outputs, resolve};

/// How the engine behaves; the defaults suit real AWS.
#[derive(Clone, Debug)]
pub struct Config {
    /// Mutating calls in flight at once.
    pub parallelism: usize,
    /// A resource the engine created that AWS does not list yet is waited for (never
    /// created again) for this long after its creation.
    pub visibility_grace: Duration,
    /// Attempts per call for throttling and 5xx errors, the first included.
    pub attempts: u32,
    /// First backoff; doubled per attempt, with full jitter, capped at `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            parallelism: 8,
            visibility_grace: Duration::from_secs(300),
            attempts: 5,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// What the engine needs to remember about a node between passes (the controller keeps
/// it in `status.resources`): its AWS id and when the engine created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub id: String,
    pub created_at: Option<jiff::Timestamp>,
}

/// Node -> what was recorded for it.
pub type Records = BTreeMap<String, Recorded>;

/// What a pass may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Create what is missing and change drifted resources back.
    Remediate,
    /// Change nothing on AWS; report what differs and what would be done.
    Report,
}

/// What the pass did (or, in a plan or in Report mode, would do) with a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Create,
    Update,
    Delete,
    NoOp,
    /// Nothing can be done yet: a dependency is not available, or AWS does not list a
    /// just-created resource yet.
    Wait,
}

impl ActionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Update => "update",
            ActionKind::Delete => "delete",
            ActionKind::NoOp => "no-op",
            ActionKind::Wait => "wait",
        }
    }
}

/// One planned or performed action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    pub node: String,
    pub kind: Kind,
    pub action: ActionKind,
    pub reason: String,
    /// The call failed (after retries for retryable errors).
    pub error: Option<CloudError>,
}

/// A node's resource as the pass left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeState {
    pub kind: Kind,
    pub observed: Option<Observed>,
    pub created_at: Option<jiff::Timestamp>,
    /// Observation failed (the node's compliance rows are then unknown).
    pub unobservable: Option<CloudError>,
}

/// The result of one pass.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Every node, in topological order, with what the pass knows of its resource.
    pub nodes: Vec<(String, NodeState)>,
    /// Drift found by this pass's observation (before any remediation).
    pub drift: Vec<FieldDrift>,
    pub actions: Vec<Action>,
    /// Every node exists, is available and matches its spec; nothing failed.
    pub ready: bool,
    /// This pass searched for resources of nodes the spec no longer has and found none
    /// left (until then the records of dropped nodes are kept, so the search repeats).
    pub swept: bool,
    /// The search for resources the spec no longer has failed (the pass is then not
    /// ready, and the search repeats).
    pub sweep_error: Option<CloudError>,
}

impl Outcome {
    /// Records to keep for the next pass.
    pub fn records(&self) -> Records {
        self.nodes
            .iter()
            .filter_map(|(node, state)| {
                state.observed.as_ref().map(|o| {
                    (
                        node.clone(),
                        Recorded {
                            id: o.id.clone(),
                            created_at: state.created_at,
                        },
                    )
                })
            })
            .collect()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(|a| a.error.is_some())
    }

    /// The first error of the pass: a failed action's, else the sweep's.
    pub fn first_error(&self) -> Option<&CloudError> {
        self.errors()
            .find_map(|a| a.error.as_ref())
            .or(self.sweep_error.as_ref())
    }

    /// Mutating actions performed (or, in Report mode, withheld).
    pub fn changes(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(|a| {
            matches!(
                a.action,
                ActionKind::Create | ActionKind::Update | ActionKind::Delete
            )
        })
    }
}

/// The result of one delete pass.
#[derive(Clone, Debug, Default)]
pub struct Deletion {
    /// Every resource tagged with the owner is gone (with `Retain`: the finalizer may go).
    /// Never true when listing what remains failed under `Delete`.
    pub done: bool,
    pub actions: Vec<Action>,
    /// Resources still tagged with the owner, as far as the listing got.
    pub remaining: Vec<Owned>,
    /// Listing what is still tagged with the owner failed: what remains is unknown.
    pub unlisted: Option<CloudError>,
}

pub struct Engine<P> {
    provider: P,
    config: Config,
    /// Whether the pass applies a new generation of the spec (`Some(true)`) or keeps an
    /// unchanged one (`Some(false)`): the reason an update gives in the audit trail.
    spec_changed: Option<bool>,
}

/// A stable idempotency token for a node of an owner (AWS client tokens: <= 64 chars).
fn client_token(owner: &Owner, node: &str) -> String {
    let text = format!("{owner}/{node}");
    let hash = |seed: u64| {
        text.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    };
    format!(
        "hipaa-{:016x}{:016x}",
        hash(0xcbf2_9ce4_8422_2325),
        hash(0x6c62_272e_07bb_0142)
    )
}

fn jitter(max: Duration) -> Duration {
    // Full jitter from the clock's nanoseconds: good enough to de-synchronise retries.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    max.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

impl<P: Provider> Engine<P> {
    pub fn new(provider: P, config: Config) -> Self {
        Self {
            provider,
            config,
            spec_changed: None,
        }
    }

    /// Says whether this pass applies a changed spec: updates are then audited as
    /// `spec-change`, else as `drift-remediation`.
    pub fn with_spec_changed(mut self, changed: bool) -> Self {
        self.spec_changed = Some(changed);
        self
    }

    /// Why an update of an existing resource is made.
    fn update_reason(&self) -> audit::Reason {
        match self.spec_changed {
            Some(true) => audit::Reason::SpecChange,
            Some(false) => audit::Reason::DriftRemediation,
            None => audit::Reason::Update,
        }
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// Runs `call` again on retryable errors, with jittered exponential backoff.
    async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CloudError>>,
    {
        let mut backoff = self.config.base_backoff;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e)
                    if e.retryable()
                        && !matches!(e, CloudError::DependencyViolation { .. })
                        && attempt < self.config.attempts =>
                {
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Creates (`observed` None) or updates a resource, retrying retryable errors; its
    /// calls are audited with `reason`.
    async fn mutate(
        &self,
        owner: &Owner,
        desired: Desired,
        observed: Option<Observed>,
        reason: audit::Reason,
    ) -> (String, Result<Observed, CloudError>) {
        let context = audit::Context {
            owner: owner.clone(),
            node: desired.node.clone(),
            resource_id: observed.as_ref().map(|o| o.id.clone()).unwrap_or_default(),
            reason,
        };
        let result = audit::within(context, async {
            match &observed {
                None => self.create(owner, &desired).await,
                Some(observed) => {
                    self.retrying(|| self.provider.update(&desired, observed))
                        .await
                }
            }
        })
        .await;
        (desired.node, result)
    }

    /// Deletes one resource (retryable errors retried), audited with `reason`.
    async fn delete_one(
        &self,
        owner: &Owner,
        node: &str,
        kind: Kind,
        id: &str,
        reason: audit::Reason,
    ) -> Result<(), CloudError> {
        let context = audit::Context {
            owner: owner.clone(),
            node: node.to_string(),
            resource_id: id.to_string(),
            reason,
        };
        audit::within(context, self.retrying(|| self.provider.delete(kind, id))).await
    }

    /// Creates a resource without ever making two. A create can fail after AWS made the
    /// resource (a throttled follow-up call, a lost response, a name taken by our own
    /// earlier attempt); before trying again the engine looks for it by its ownership
    /// tags and, when found, adopts it and brings it to the spec with an update.
    async fn create(&self, owner: &Owner, desired: &Desired) -> Result<Observed, CloudError> {
        let mut backoff = self.config.base_backoff;
        let mut attempt = 1;
        loop {
            let error = match self.provider.create(desired).await {
                Ok(created) => return Ok(created),
                Err(e) => e,
            };
            let already_exists = error.already_exists();
            if !(error.retryable() || already_exists) || attempt >= self.config.attempts {
                return Err(error);
            }
            tokio::time::sleep(jitter(backoff)).await;
            backoff = (backoff * 2).min(self.config.max_backoff);
            attempt += 1;
            let lookup = Lookup {
                node: desired.node.clone(),
                recorded_id: None,
                desired: Some(desired.spec.clone()),
            };
            let kind = desired.spec.kind();
            let found = self
                .retrying(|| {
                    self.provider
                        .observe(kind, owner, std::slice::from_ref(&lookup))
                })
                .await;
            if let Ok(found) = found
                && let Some(Some(existing)) = found.into_iter().next()
            {
                return self
                    .retrying(|| self.provider.update(desired, &existing))
                    .await;
            }
        }
    }

    /// Deletes resources found by tag search, one attempt each (retryable errors retried).
    async fn delete_owned(
        &self,
        owner: &Owner,
        resources: &[Owned],
        reason: &str,
        audited: audit::Reason,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        for resource in resources {
            let error = self
                .delete_one(owner, &resource.node, resource.kind, &resource.id, audited)
                .await
                .err();
            actions.push(Action {
                node: if resource.node.is_empty() {
                    format!("untracked/{}", resource.id)
                } else {
                    resource.node.clone()
                },
                kind: resource.kind,
                action: ActionKind::Delete,
                reason: reason.into(),
                error,
            });
        }
        actions
    }

    /// Checks what the schema cannot: the zones exist in the region. Read-only.
    pub async fn validate(&self, graph: &Graph, zones: &[String]) -> Result<(), BlueprintError> {
        let available = self
            .retrying(|| self.provider.availability_zones(&graph.region))
            .await
            .map_err(|e| BlueprintError {
                field: "spec.region".into(),
                message: e.to_string(),
            })?;
        for (i, zone) in zones.iter().enumerate() {
            if !available.contains(zone) {
                return Err(BlueprintError {
                    field: format!("spec.availabilityZones[{i}]"),
                    message: format!(
                        "{zone:?} is not an availability zone of {} (it has {})",
                        graph.region,
                        available.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Observes every node: one batched call per kind, in dependency order so that
    /// lookups needing a dependency's id (the default security group) can be resolved.
    async fn observe(
        &self,
        graph: &Graph,
        order: &[String],
        owner: &Owner,
        records: &Records,
    ) -> (Outputs, BTreeMap<String, CloudError>) {
        let mut outputs = Outputs::new();
        let mut failures = BTreeMap::new();
        let mut kinds: Vec<Kind> = Vec::new();
        for key in order {
            let kind = graph.node(key).map(Node::kind);
            if let Some(kind) = kind
                && !kinds.contains(&kind)
            {
                kinds.push(kind);
            }
        }
        for kind in kinds {
            let nodes: Vec<&Node> = order
                .iter()
                .filter_map(|k| graph.node(k))
                .filter(|n| n.kind() == kind)
                .collect();
            let lookups: Vec<Lookup> = nodes
                .iter()
                .map(|n| Lookup {
                    node: n.key.clone(),
                    recorded_id: records.get(&n.key).map(|r| r.id.clone()),
                    desired: resolve(&n.spec, &outputs).ok(),
                })
                .collect();
            match self
                .retrying(|| self.provider.observe(kind, owner, &lookups))
                .await
            {
                Ok(found) => {
                    for (node, observed) in nodes.iter().zip(found) {
                        if let Some(o) = observed {
                            outputs.insert(node.key.clone(), o);
                        }
                    }
                }
                Err(e) => {
                    for node in nodes {
                        failures.insert(node.key.clone(), e.clone());
                    }
                }
            }
        }
        (outputs, failures)
    }

    /// What a pass would do, changing nothing (read-only calls only).
    pub async fn plan(
        &self,
        graph: &Graph,
        owner: &Owner,
        records: &Records,
    ) -> Result<Outcome, BlueprintError> {
        self.pass(graph, owner, records, Mode::Report).await
    }

    /// One reconcile pass toward `graph`.
    pub async fn converge(
        &self,
        graph: &Graph,
        owner: &Owner,
        records: &Records,
        mode: Mode,
    ) -> Result<Outcome, BlueprintError> {
        self.pass(graph, owner, records, mode).await
    }

    async fn pass(
        &self,
        graph: &Graph,
        owner: &Owner,
        records: &Records,
        mode: Mode,
    ) -> Result<Outcome, BlueprintError> {
        let order = graph.topological_order()?;
        let (mut outputs, failures) = self.observe(graph, &order, owner, records).await;
        // A resource on its way out (deleted from the console) counts as absent.
        outputs.retain(|_, o| o.state != State::Deleting);
        // Creation times matter only until AWS first lists the resource: after that, its
        // absence means it was deleted, not that AWS is slow to show it.
        let created_at: BTreeMap<String, jiff::Timestamp> = records
            .iter()
            .filter(|(k, _)| !outputs.contains_key(*k))
            .filter_map(|(k, r)| r.created_at.map(|t| (k.clone(), t)))
            .collect();
        let mut state = PassState {
            outputs,
            failures,
            created_at,
            ..PassState::default()
        };
        let now = jiff::Timestamp::now();
        let mut in_flight = FuturesUnordered::new();
        loop {
            // Start every node whose dependencies are settled.
            for key in &order {
                if state.settled.contains(key) || in_flight_contains(&state.actions, key) {
                    continue;
                }
                let node = graph.node(key).expect("ordered keys are nodes");
                if node
                    .dependencies()
                    .iter()
                    .any(|d| !state.settled.contains(d))
                {
                    continue;
                }
                let (step, found) = self.step(&state, graph, node, owner, records, mode, now);
                match step {
                    Step::Settle {
                        action,
                        block,
                        planned,
                    } => {
                        state.drift.extend(found);
                        state.actions.push(action);
                        state.settled.insert(key.clone());
                        if block {
                            state.blocked.insert(key.clone());
                        }
                        if planned {
                            state.planned.insert(key.clone());
                        }
                    }
                    // Bounded parallelism: the node starts once a call finishes.
                    Step::Call { .. } if in_flight.len() >= self.config.parallelism => {}
                    Step::Call {
                        action,
                        call,
                        reason,
                    } => {
                        let (desired, observed) = *call;
                        state.drift.extend(found);
                        state.actions.push(action);
                        in_flight.push(self.mutate(owner, desired, observed, reason));
                    }
                }
            }
            // Wait for one call to finish, then look for newly startable nodes.
            let Some((key, result)) = in_flight.next().await else {
                break;
            };
            state.finish_call(key, result);
        }

        let nodes = state.node_states(graph, &order);
        let remediated = mode == Mode::Remediate;
        let converged = state.blocked.is_empty()
            && state.planned.is_empty()
            && state.actions.iter().all(|a| a.error.is_none())
            && nodes.iter().all(|(_, s)| {
                s.observed
                    .as_ref()
                    .is_some_and(|o| o.state == State::Available)
            });
        let PassState {
            mut drift,
            mut actions,
            ..
        } = state;
        // The sweep is a tag search over every kind: it runs only when something may be
        // left over — the records name nodes the graph no longer has (the spec changed),
        // or lack some of its nodes (first converge, or records lost in a crash) — so a
        // steady pass stays one read per kind. It runs once the graph itself is in place,
        // i.e. after whatever used a left-over resource was changed to the new spec.
        let may_be_left_over = records.keys().any(|k| graph.node(k).is_none())
            || graph.nodes.iter().any(|n| !records.contains_key(&n.key));
        let sweep = if converged && may_be_left_over {
            self.sweep(graph, owner, mode).await
        } else {
            Sweep::default()
        };
        drift.extend(sweep.drift);
        actions.extend(sweep.actions);
        let clean = sweep.orphans == 0 && sweep.error.is_none();
        let ready = converged && clean && (remediated || drift.is_empty());
        Ok(Outcome {
            nodes,
            drift,
            actions,
            ready,
            swept: converged && may_be_left_over && clean,
            sweep_error: sweep.error,
        })
    }

    /// What to do with one node whose dependencies are settled, and the drift its
    /// observation shows. No side effects: the pass applies the step.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        state: &PassState,
        graph: &Graph,
        node: &Node,
        owner: &Owner,
        records: &Records,
        mode: Mode,
        now: jiff::Timestamp,
    ) -> (Step, Vec<FieldDrift>) {
        let key = &node.key;
        let deps = node.dependencies();
        let settle = |action: Action, block: bool| Step::Settle {
            action,
            block,
            planned: false,
        };
        if let Some(d) = deps.iter().find(|d| state.blocked.contains(*d)) {
            return (settle(wait(node, format!("waiting for {d}")), true), vec![]);
        }
        // Report mode (and plans): a dependency that would be created first means this
        // node would be created after it, unless it already exists.
        if let Some(d) = deps.iter().find(|d| state.planned.contains(*d)) {
            if state.outputs.contains_key(key) {
                let reason = format!("exists; compared once {d} exists");
                return (settle(act(node, ActionKind::NoOp, reason), false), vec![]);
            }
            let reason = format!("does not exist (after {d})");
            let step = Step::Settle {
                action: act(node, ActionKind::Create, reason),
                block: false,
                planned: true,
            };
            return (step, vec![]);
        }
        if let Some(error) = state.failures.get(key) {
            let mut action = act(node, ActionKind::Wait, "could not be observed");
            action.error = Some(error.clone());
            return (settle(action, true), vec![]);
        }
        let spec = match resolve(&node.spec, &state.outputs) {
            Ok(spec) => spec,
            Err(missing) => {
                return (
                    settle(wait(node, format!("waiting for {missing}")), true),
                    vec![],
                );
            }
        };
        let desired = Desired {
            node: key.clone(),
            spec,
            tags: ownership_tags(owner, key, &graph.tags),
            client_token: client_token(owner, key),
        };
        let Some(observed) = state.outputs.get(key) else {
            let recent = state.created_at.get(key).is_some_and(|t| {
                now.duration_since(*t).unsigned_abs() < self.config.visibility_grace
            });
            if recent {
                // Created moments ago; AWS lists it soon. Creating it again would make a
                // duplicate.
                let reason = "created recently, not yet listed by AWS".into();
                return (settle(wait(node, reason), true), vec![]);
            }
            let mut found = Vec::new();
            if records.contains_key(key) {
                found.push(FieldDrift::value(key, "existence", "present", "<absent>"));
            }
            let action = act(node, ActionKind::Create, "does not exist");
            let step = match mode {
                Mode::Report => Step::Settle {
                    action,
                    block: false,
                    planned: true,
                },
                Mode::Remediate => Step::Call {
                    action,
                    call: Box::new((desired, None)),
                    // A recorded resource that is gone was deleted behind our back.
                    reason: if records.contains_key(key) {
                        audit::Reason::DriftRemediation
                    } else {
                        audit::Reason::Create
                    },
                },
            };
            return (step, found);
        };
        if observed.state == State::Pending {
            // AWS is still creating or changing it (a table CREATING, a function whose
            // last update is InProgress) and refuses changes until it is done: it is
            // compared once available, and its differences are not judged before.
            let reason = "AWS is still creating or changing it; compared once available";
            return (settle(wait(node, reason.into()), true), vec![]);
        }
        let found = diff::diff(key, &desired.spec, &desired.tags, observed);
        let unavailable = observed.state != State::Available;
        if found.is_empty() {
            let action = act(node, ActionKind::NoOp, "matches the spec");
            return (settle(action, unavailable), found);
        }
        let fields: Vec<&str> = found.iter().map(|d| d.field.as_str()).collect();
        let action = act(
            node,
            ActionKind::Update,
            format!("drifted: {}", fields.join(", ")),
        );
        let step = match mode {
            Mode::Report => settle(action, unavailable),
            Mode::Remediate => Step::Call {
                action,
                call: Box::new((desired, Some(observed.clone()))),
                reason: self.update_reason(),
            },
        };
        (step, found)
    }

    /// Resources tagged with the owner for nodes the graph no longer has (a zone
    /// removed, one NAT instead of one per zone): deleted in Remediate mode, reported in
    /// Report mode. A failed listing is reported, never taken for "nothing left over".
    async fn sweep(&self, graph: &Graph, owner: &Owner, mode: Mode) -> Sweep {
        let owned = match self.retrying(|| self.provider.owned(owner)).await {
            Ok(owned) => owned,
            Err(error) => {
                return Sweep {
                    error: Some(error),
                    ..Sweep::default()
                };
            }
        };
        let keys: BTreeSet<&str> = graph.nodes.iter().map(|n| n.key.as_str()).collect();
        let orphans: Vec<Owned> = owned
            .into_iter()
            .filter(|o| !keys.contains(o.node.as_str()))
            .collect();
        let drift = orphans
            .iter()
            .map(|orphan| FieldDrift::value(&orphan.node, "existence", "<absent>", &orphan.id))
            .collect();
        let actions = match mode {
            Mode::Remediate => {
                self.delete_owned(
                    owner,
                    &orphans,
                    "no longer in the spec",
                    audit::Reason::OrphanSweep,
                )
                .await
            }
            Mode::Report => orphans
                .iter()
                .map(|o| Action {
                    node: o.node.clone(),
                    kind: o.kind,
                    action: ActionKind::Delete,
                    reason: "no longer in the spec".into(),
                    error: None,
                })
                .collect(),
        };
        Sweep {
            orphans: orphans.len(),
            drift,
            actions,
            error: None,
        }
    }

    /// What deleting the custom resource means under its deletion policy: with `Retain`
    /// nothing is deleted (no AWS call but one listing of what stays); with `Delete`, one
    /// [`delete`](Self::delete) pass.
    pub async fn finalize(
        &self,
        graph: &Graph,
        owner: &Owner,
        records: &Records,
        policy: crate::api::DeletionPolicy,
    ) -> Result<Deletion, BlueprintError> {
        match policy {
            crate::api::DeletionPolicy::Retain => {
                // Retain deletes nothing, so an unknown remainder does not hold the
                // finalizer: the listing only tells the user what stays.
                let (remaining, unlisted) = match self.retrying(|| self.provider.owned(owner)).await
                {
                    Ok(remaining) => (remaining, None),
                    Err(error) => (Vec::new(), Some(error)),
                };
                Ok(Deletion {
                    done: true,
                    actions: Vec::new(),
                    remaining,
                    unlisted,
                })
            }
            crate::api::DeletionPolicy::Delete => self.delete(graph, owner, records).await,
        }
    }

    /// One delete pass: every node in reverse dependency order (a node goes once nothing
    /// that depends on it remains), then anything else still tagged with the owner.
    /// DependencyViolation and asynchronous deletes (`DeleteMode::Async` in the kind
    /// registry: NAT gateways, instances) leave work for the next pass; `done` is true only when nothing tagged with the owner remains.
    pub async fn delete(
        &self,
        graph: &Graph,
        owner: &Owner,
        records: &Records,
    ) -> Result<Deletion, BlueprintError> {
        let order = graph.topological_order()?;
        let (outputs, failures) = self.observe(graph, &order, owner, records).await;
        let mut dependents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for node in &graph.nodes {
            for dep in node.dependencies() {
                dependents.entry(dep).or_default().insert(node.key.clone());
            }
        }
        // Kinds deleted with their parent (the default security group goes with its VPC)
        // are never present; nodes that could not be observed are treated as present, so
        // nothing they depend on is deleted under them.
        let mut present: BTreeSet<String> = outputs
            .iter()
            .filter(|(_, o)| o.spec.kind().info().deletion != DeleteMode::WithParent)
            .map(|(k, _)| k.clone())
            .chain(failures.keys().cloned())
            .collect();
        let mut requested: BTreeSet<String> = outputs
            .iter()
            .filter(|(_, o)| o.state == State::Deleting)
            .map(|(k, _)| k.clone())
            .chain(failures.keys().cloned())
            .collect();
        let mut actions = Vec::new();
        loop {
            let ready: Vec<String> = present
                .iter()
                .filter(|k| !requested.contains(*k))
                .filter(|k| {
                    dependents
                        .get(*k)
                        .is_none_or(|ds| ds.iter().all(|d| !present.contains(d)))
                })
                .take(self.config.parallelism)
                .cloned()
                .collect();
            if ready.is_empty() {
                break;
            }
            let mut batch = FuturesUnordered::new();
            for key in ready {
                let kind = outputs[&key].spec.kind();
                let id = outputs[&key].id.clone();
                batch.push(async move {
                    let result = self
                        .delete_one(owner, &key, kind, &id, audit::Reason::Delete)
                        .await;
                    (key, kind, result)
                });
            }
            while let Some((key, kind, result)) = batch.next().await {
                let error = result.err();
                if error.is_none() && kind.info().deletion == DeleteMode::Sync {
                    present.remove(&key);
                } else {
                    // Going asynchronously, or refused for now: it holds what it depends on.
                    requested.insert(key.clone());
                }
                actions.push(Action {
                    node: key,
                    kind,
                    action: ActionKind::Delete,
                    reason: "the custom resource is being deleted".into(),
                    error,
                });
            }
        }
        let mut remaining = match self.retrying(|| self.provider.owned(owner)).await {
            Ok(remaining) => remaining,
            // What remains is unknown: never "nothing", which would release the finalizer
            // over resources still on AWS.
            Err(error) => {
                return Ok(Deletion {
                    done: false,
                    actions,
                    remaining: Vec::new(),
                    unlisted: Some(error),
                });
            }
        };
        if present.is_empty() {
            // Anything else tagged with the owner: from an older spec, or never recorded.
            let known: BTreeSet<&str> = outputs.values().map(|o| o.id.as_str()).collect();
            let untracked: Vec<Owned> = remaining
                .iter()
                .filter(|o| !known.contains(o.id.as_str()))
                .cloned()
                .collect();
            actions.extend(
                self.delete_owned(
                    owner,
                    &untracked,
                    "tagged with the owner",
                    audit::Reason::Delete,
                )
                .await,
            );
            if !untracked.is_empty() {
                match self.retrying(|| self.provider.owned(owner)).await {
                    Ok(now) => remaining = now,
                    Err(error) => {
                        return Ok(Deletion {
                            done: false,
                            actions,
                            remaining,
                            unlisted: Some(error),
                        });
                    }
                }
            }
        }
        Ok(Deletion {
            done: remaining.is_empty(),
            actions,
            remaining,
            unlisted: None,
        })
    }
}

/// Passes until the graph is ready (or `max_passes`), sleeping `poll` between passes
/// as a controller's short requeue would. Returns the last outcome, the records to keep
/// and the number of passes.
pub async fn run_until_ready<P: Provider>(
    engine: &Engine<P>,
    graph: &Graph,
    owner: &Owner,
    records: &Records,
    mode: Mode,
    poll: Duration,
    max_passes: usize,
) -> Result<(Outcome, Records, usize), BlueprintError> {
    let mut records = records.clone();
    let mut passes = 0;
    loop {
        let outcome = engine.converge(graph, owner, &records, mode).await?;
        passes += 1;
        records = merge_records(&records, &outcome);
        if outcome.ready || passes >= max_passes {
            return Ok((outcome, records, passes));
        }
        tokio::time::sleep(poll).await;
    }
}

/// Records after a pass: what the pass saw or created, plus earlier records of nodes it
/// could not see yet (created moments ago, not listed yet).
pub fn merge_records(previous: &Records, outcome: &Outcome) -> Records {
    let mut records = outcome.records();
    for (node, recorded) in previous {
        let waiting = outcome
            .actions
            .iter()
            .any(|a| &a.node == node && a.action == ActionKind::Wait);
        // Nodes the spec dropped are remembered until a sweep has removed them.
        let dropped = !outcome.nodes.iter().any(|(k, _)| k == node);
        if (waiting || (dropped && !outcome.swept)) && !records.contains_key(node) {
            records.insert(node.clone(), recorded.clone());
        }
    }
    records
}

/// What one pass knows and has decided so far.
#[derive(Default)]
struct PassState {
    /// Observed (or just created/updated) resources by node.
    outputs: Outputs,
    /// Nodes whose observation failed.
    failures: BTreeMap<String, CloudError>,
    /// Creation times of nodes created recently and not listed by AWS yet.
    created_at: BTreeMap<String, jiff::Timestamp>,
    actions: Vec<Action>,
    drift: Vec<FieldDrift>,
    /// Nodes done for this pass (acted on or decided); `blocked` ones hold dependents.
    settled: BTreeSet<String>,
    blocked: BTreeSet<String>,
    /// Report mode: nodes that would be created.
    planned: BTreeSet<String>,
}

impl PassState {
    /// Records the result of a create or update the pass started for `key`.
    fn finish_call(&mut self, key: String, result: Result<Observed, CloudError>) {
        let action = self
            .actions
            .iter_mut()
            .rev()
            .find(|a| a.node == key)
            .expect("an action was recorded for the call");
        match result {
            Ok(observed) => {
                if action.action == ActionKind::Create {
                    self.created_at.insert(key.clone(), jiff::Timestamp::now());
                }
                if observed.state != State::Available {
                    self.blocked.insert(key.clone());
                }
                self.outputs.insert(key.clone(), observed);
            }
            Err(error) => {
                action.error = Some(error);
                self.blocked.insert(key.clone());
            }
        }
        self.settled.insert(key);
    }

    /// Every node, in `order`, with what the pass knows of its resource.
    fn node_states(&self, graph: &Graph, order: &[String]) -> Vec<(String, NodeState)> {
        order
            .iter()
            .map(|key| {
                let node = graph.node(key).expect("ordered keys are nodes");
                let state = NodeState {
                    kind: node.kind(),
                    observed: self.outputs.get(key).cloned(),
                    created_at: self.created_at.get(key).copied(),
                    unobservable: self.failures.get(key).cloned(),
                };
                (key.clone(), state)
            })
            .collect()
    }
}

/// What the pass does with a node.
enum Step {
    /// Decided without a call (no-op, wait, or what Report mode would do).
    Settle {
        action: Action,
        /// Its dependents wait (it is not available, or failed).
        block: bool,
        /// Report mode: it would be created.
        planned: bool,
    },
    /// A create or an update to make.
    Call {
        action: Action,
        /// The resource as wanted, and as observed (None: create).
        call: Box<(Desired, Option<Observed>)>,
        /// Why, for the audit trail.
        reason: audit::Reason,
    },
}

/// What the search for left-over resources found and did.
#[derive(Default)]
struct Sweep {
    orphans: usize,
    drift: Vec<FieldDrift>,
    actions: Vec<Action>,
    error: Option<CloudError>,
}

fn wait(node: &Node, reason: String) -> Action {
    act(node, ActionKind::Wait, reason)
}

fn act(node: &Node, action: ActionKind, reason: impl Into<String>) -> Action {
    Action {
        node: node.key.clone(),
        kind: node.kind(),
        action,
        reason: reason.into(),
        error: None,
    }
}

/// A create/update for `key` was started and has not finished.
fn in_flight_contains(actions: &[Action], key: &str) -> bool {
    actions.iter().any(|a| a.node == key)
}
