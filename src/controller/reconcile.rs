//! Apply and Cleanup for any [`Stack`]: one engine pass toward the spec (status, events,
//! metrics from its outcome), or one delete pass (the finalizer goes only when nothing
//! tagged with the object remains). Neither ever waits on AWS.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use serde_json::{Value, json};

use super::events::{self, PassEvents, error_reason, publish};
use super::references::{self, Resolution};
use super::stack::{Stack, common_status_of, object_key, owner_of, records_of};
use super::status::{self, Gate, Pass};
use super::{Context, Error, MANAGER, is_paused, pass_metrics};
use crate::api::{CommonStatus, DeletionPolicy, DriftPolicy};
use crate::blueprint::Graph;
use crate::compliance::ObservedNode;
use crate::engine::{Engine, Mode, Outcome, merge_records};

/// One engine pass toward the spec; status, events and metrics from its outcome.
pub async fn apply<K: Stack>(object: Arc<K>, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(object.as_ref());
    let key = object_key(object.as_ref());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let previous = common_status_of(object.as_ref());
    let paused = is_paused(object.as_ref());
    let generation = object.meta().generation;
    let spec_changed = previous.observed_generation != generation;

    let target = match references::resolve(object.as_ref(), ctx).await? {
        Resolution::None => None,
        Resolution::Ready(target) => Some(target),
        Resolution::Waiting(why) => {
            return wait_for_reference(object.as_ref(), &api, ctx, why).await;
        }
    };
    let cloud = ctx.clouds.get(&object.common_spec().region);
    let engine = Engine::new(cloud, ctx.settings.engine.clone()).with_spec_changed(spec_changed);
    let graph = match object.blueprint(&owner, target.as_ref()) {
        Ok(graph) => graph,
        Err(e) => return refuse(object.as_ref(), &api, ctx, e.to_string()).await,
    };
    let zones = object.availability_zones();
    if spec_changed
        && !zones.is_empty()
        && let Err(e) = engine.validate(&graph, &zones).await
    {
        return refuse(object.as_ref(), &api, ctx, e.to_string()).await;
    }

    let records = records_of(&previous);
    let mode = if paused || object.common_spec().drift_policy == DriftPolicy::Report {
        Mode::Report
    } else {
        Mode::Remediate
    };
    let outcome = engine
        .converge(&graph, &owner, &records, mode)
        .await
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let kept = merge_records(&records, &outcome);
    let compliance = object.compliance(
        &observed_nodes(&outcome),
        ctx.settings.min_log_retention_days,
        target.as_ref(),
    );
    let report = status::report(Pass {
        outcome: &outcome,
        records: &kept,
        previous: &previous,
        generation,
        spec_changed,
        mode,
        gate: if paused { Gate::Paused } else { Gate::Active },
        compliance,
        now: jiff::Timestamp::now(),
    });
    // Metrics first: whoever sees the new status finds metrics at least as recent.
    pass_metrics::record(object.as_ref(), ctx, &graph, &report);
    ctx.set_managed(K::KIND, &key, Some(report.status.resources.len() as i64));
    let status = object.status_after(report.status.clone(), &outcome);
    let written = write_status(&api, object.as_ref(), &status).await?;
    let changes = outcome.changes().count();
    if written || changes > 0 {
        // One line per pass that changed AWS or the status (the span names the object
        // and the trace id); steady passes log at debug only.
        tracing::info!(
            changes,
            ready = outcome.ready,
            drifted = report.drifted_resources,
            errors = outcome.errors().count(),
            "pass"
        );
    } else {
        tracing::debug!(ready = outcome.ready, "pass changed nothing");
    }
    let pass = PassEvents {
        graph: &graph,
        outcome: &outcome,
        report: &report,
        previous: &previous,
        mode,
    };
    events::publish_pass(ctx, object.as_ref(), &pass).await;

    if let Some(error) = outcome.first_error().cloned() {
        // Status says what failed; the error policy backs off.
        return Err(Error::Cloud(error));
    }
    ctx.succeeded(&key);
    if outcome.ready || mode == Mode::Report {
        // Nothing to wait for: the next look is the periodic resync (drift detection).
        Ok(Action::requeue(ctx.settings.resync))
    } else {
        // An asynchronous AWS state (NAT pending, instance starting) or a resource AWS
        // does not list yet: look again soon rather than block a worker.
        Ok(Action::requeue(ctx.settings.pending_requeue))
    }
}

/// The referenced object is missing or not Ready: say so, call nothing on AWS.
async fn wait_for_reference<K: Stack>(
    object: &K,
    api: &Api<K>,
    ctx: &Context,
    why: String,
) -> Result<Action, Error> {
    let previous = common_status_of(object);
    let was_waiting = status::condition(&previous.conditions, status::READY)
        .is_some_and(|c| c.reason == "WaitingForReference" && c.message == why);
    let mut common = previous.clone();
    set(
        &mut common,
        object,
        &[(status::READY, "False", "WaitingForReference")],
        why.clone(),
    );
    common.observed_generation = object.meta().generation;
    let status = K::with_common(object.status().cloned().unwrap_or_default(), common);
    write_status(api, object, &status).await?;
    if !was_waiting {
        tracing::info!(reason = %why, "waiting for the referenced object");
        publish(
            ctx,
            object,
            EventType::Normal,
            "WaitingForReference",
            "Reconcile",
            why,
        )
        .await;
    }
    ctx.succeeded(&object_key(object));
    // The watch on the referenced kind wakes this object the moment the reference is
    // Ready or its outputs change; this requeue is only the periodic resync.
    Ok(Action::requeue(ctx.settings.resync))
}

/// A spec the engine cannot build: say so in status and an event, call nothing on AWS
/// that changes anything. The error policy backs off (the next spec change retries).
async fn refuse<K: Stack>(
    object: &K,
    api: &Api<K>,
    ctx: &Context,
    message: String,
) -> Result<Action, Error> {
    let mut common = common_status_of(object);
    set(
        &mut common,
        object,
        &[
            (status::READY, "False", "InvalidSpec"),
            (status::SYNCED, "False", "InvalidSpec"),
        ],
        message.clone(),
    );
    common.observed_generation = object.meta().generation;
    let status = K::with_common(object.status().cloned().unwrap_or_default(), common);
    write_status(api, object, &status).await?;
    publish(
        ctx,
        object,
        EventType::Warning,
        "InvalidSpec",
        "Validate",
        message.clone(),
    )
    .await;
    Err(Error::InvalidSpec(message))
}

/// Deletes the AWS resources (or, with `deletionPolicy: Retain`, leaves them). Ok only
/// when nothing tagged with the object remains and no other object references it: the
/// finalizer helper then removes the finalizer.
pub async fn cleanup<K: Stack>(object: Arc<K>, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(object.as_ref());
    let key = object_key(object.as_ref());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    if is_paused(object.as_ref()) {
        let why = "annotation hipaa.dev/paused is \"true\": AWS resources are not deleted until it is removed";
        set_ready(&api, object.as_ref(), "DeletionPaused", why.into()).await?;
        return Err(Error::PausedDeletion);
    }
    let dependents = references::referrers(object.as_ref(), ctx).await?;
    if !dependents.is_empty() {
        let why = format!(
            "deletion waits until no object references this one: {}",
            dependents.join(", ")
        );
        set_ready(&api, object.as_ref(), "DependentsExist", why).await?;
        return Err(Error::DependentsExist(dependents.len()));
    }
    let cloud = ctx.clouds.get(&object.common_spec().region);
    let engine = Engine::new(cloud, ctx.settings.engine.clone());
    // The graph orders the deletes; when it cannot be built (a bad spec, a reference
    // gone), what is tagged with the object is still found and deleted by tag.
    let target = match references::resolve(object.as_ref(), ctx).await? {
        Resolution::Ready(target) => Some(target),
        _ => None,
    };
    let graph = object
        .blueprint(&owner, target.as_ref())
        .unwrap_or_else(|_| Graph {
            region: object.common_spec().region.clone(),
            ..Graph::default()
        });
    let records = records_of(&common_status_of(object.as_ref()));
    let policy = object.common_spec().deletion_policy;
    let deletion = engine
        .finalize(&graph, &owner, &records, policy)
        .await
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    for action in deletion.actions.iter().filter(|a| a.error.is_none()) {
        let note = format!("deleted {} {}", action.kind.type_name(), action.node);
        publish(
            ctx,
            object.as_ref(),
            EventType::Normal,
            "Deleted",
            "Delete",
            note,
        )
        .await;
    }
    if deletion.done {
        let note = match (policy, &deletion.unlisted) {
            (DeletionPolicy::Retain, None) => format!(
                "deletionPolicy Retain: {} AWS resource(s) left in place, finalizer released",
                deletion.remaining.len()
            ),
            (DeletionPolicy::Retain, Some(error)) => format!(
                "deletionPolicy Retain: AWS resources left in place (listing them failed: {error}), finalizer released"
            ),
            (DeletionPolicy::Delete, _) => {
                "every AWS resource tagged with this object is deleted".into()
            }
        };
        publish(
            ctx,
            object.as_ref(),
            EventType::Normal,
            "CleanupComplete",
            "Delete",
            note,
        )
        .await;
        pass_metrics::forget(ctx, object.as_ref());
        ctx.set_managed(K::KIND, &key, None);
        ctx.succeeded(&key);
        return Ok(Action::await_change());
    }
    // A listing that failed leaves what remains unknown: the finalizer stays, the status
    // says why, and the error policy backs off before the next look.
    let failure = deletion.unlisted.clone().or_else(|| {
        deletion
            .actions
            .iter()
            .find_map(|a| a.error.clone())
            .filter(|e| !e.retryable())
    });
    if let Some(error) = failure {
        set_ready(&api, object.as_ref(), "DeletionFailed", error.to_string()).await?;
        publish(
            ctx,
            object.as_ref(),
            EventType::Warning,
            error_reason(&error),
            "Delete",
            error.to_string(),
        )
        .await;
        return Err(Error::Cloud(error));
    }
    let remaining = deletion.remaining.len();
    let why = format!("{remaining} AWS resource(s) remain");
    set_ready(&api, object.as_ref(), "Deleting", why).await?;
    Err(Error::CleanupPending(remaining))
}

/// Sets `conditions` (type, status, reason), all with `message`, on `common`, keeping
/// each one's transition time when its status did not flip.
fn set<K: Stack>(
    common: &mut CommonStatus,
    object: &K,
    conditions: &[(&str, &str, &str)],
    message: String,
) {
    let previous: Vec<Condition> = common.conditions.clone();
    for (type_, status_, reason) in conditions {
        status::set_condition(
            &mut common.conditions,
            &previous,
            status::Cond {
                type_,
                status: status_,
                reason,
                message: message.clone(),
            },
            object.meta().generation,
            jiff::Timestamp::now(),
        );
    }
}

/// Sets only the Ready condition to False (deletion progress), keeping the rest.
async fn set_ready<K: Stack>(
    api: &Api<K>,
    object: &K,
    reason: &str,
    message: String,
) -> Result<(), Error> {
    let mut common = common_status_of(object);
    set(
        &mut common,
        object,
        &[(status::READY, "False", reason)],
        message,
    );
    let status = K::with_common(object.status().cloned().unwrap_or_default(), common);
    write_status(api, object, &status).await.map(|_| ())
}

/// Writes the status through the status subresource when it changed. A JSON merge patch
/// of the whole status, with `null` for every field the new status no longer has.
///
/// The status carries the trace id of the pass that changed it: a status that differs
/// from the stored one only by its trace id is not written.
async fn write_status<K: Stack>(
    api: &Api<K>,
    object: &K,
    status: &K::Status,
) -> Result<bool, Error> {
    let stamped = |trace_id: Option<String>| {
        let mut common = K::common_status(status).clone();
        common.trace_id = trace_id;
        K::with_common(status.clone(), common)
    };
    let stored_trace = object
        .status()
        .and_then(|s| K::common_status(s).trace_id.clone());
    if object.status() == Some(&stamped(stored_trace)) {
        return Ok(false);
    }
    let status = stamped(super::current_trace_id());
    let mut patch = serde_json::to_value(&status).unwrap_or(Value::Null);
    if let (Some(Value::Object(old)), Value::Object(new)) = (
        object.status().and_then(|s| serde_json::to_value(s).ok()),
        &mut patch,
    ) {
        for field in old.keys() {
            new.entry(field.clone()).or_insert(Value::Null);
        }
    }
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER),
        &Patch::Merge(json!({ "status": patch })),
    )
    .await?;
    Ok(true)
}

/// What compliance reads of a pass: each node's observation, or why it failed.
fn observed_nodes(outcome: &Outcome) -> Vec<ObservedNode> {
    outcome
        .nodes
        .iter()
        .map(|(node, state)| ObservedNode {
            node: node.clone(),
            kind: state.kind,
            observed: match &state.unobservable {
                Some(error) => Err(error.to_string()),
                None => Ok(state.observed.clone()),
            },
        })
        .collect()
}
