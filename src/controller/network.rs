//! HipaaNetwork: Apply (one engine pass, status, events, metrics) and Cleanup (one delete
//! pass; the finalizer goes when nothing tagged with the object remains).

use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::status::{self, Gate, Pass};
use super::{Context, Error, MANAGER, is_paused, key_of};
use crate::api::{
    CommonStatus, ControlResult, DeletionPolicy, DriftPolicy, HipaaNetwork, HipaaNetworkSpec,
    HipaaNetworkStatus, ManagedResource,
};
use crate::blueprint::{self, Graph};
use crate::cloud::{CloudError, Owner};
use crate::compliance::{self, ObservedNode};
use crate::engine::{ActionKind, Engine, Mode, Outcome, Recorded, Records, merge_records};

const KIND: &str = "HipaaNetwork";

fn owner_of(net: &HipaaNetwork) -> Owner {
    Owner {
        namespace: net.namespace().unwrap_or_default(),
        name: net.name_any(),
    }
}

/// The records the engine needs, from `status.resources`.
fn records_of(status: &CommonStatus) -> Records {
    status
        .resources
        .iter()
        .filter_map(|r| {
            r.id.as_ref().map(|id| {
                (
                    r.node.clone(),
                    Recorded {
                        id: id.clone(),
                        created_at: r.created_at.as_ref().map(|t| t.0),
                    },
                )
            })
        })
        .collect()
}

/// One engine pass toward the spec; status, events and metrics from its outcome.
pub async fn apply(net: Arc<HipaaNetwork>, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(&net);
    let key = key_of(net.as_ref());
    let api: Api<HipaaNetwork> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let previous = net.status.clone().unwrap_or_default();
    let paused = is_paused(net.as_ref());
    let generation = net.metadata.generation;
    let spec_changed = previous.common.observed_generation != generation;

    let cloud = ctx.clouds.get(&net.spec.common.region);
    let engine = Engine::new(cloud, ctx.settings.engine.clone());
    let graph = blueprint::network::build(&owner, &net.spec);
    let graph = match graph {
        Ok(graph) if !spec_changed => graph,
        Ok(graph) => match engine.validate(&graph, &net.spec.availability_zones).await {
            Ok(()) => graph,
            Err(e) => return refuse(&net, &api, ctx, e.to_string()).await,
        },
        Err(e) => return refuse(&net, &api, ctx, e.to_string()).await,
    };

    let records = records_of(&previous.common);
    let mode = if paused || net.spec.common.drift_policy == DriftPolicy::Report {
        Mode::Report
    } else {
        Mode::Remediate
    };
    let outcome = engine
        .converge(&graph, &owner, &records, mode)
        .await
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    let kept = merge_records(&records, &outcome);
    let compliance = compliance::evaluate_network(
        &observed_nodes(&outcome),
        &compliance::Context {
            min_log_retention_days: ctx.settings.min_log_retention_days,
            allowed_ssh_cidrs: net.spec.bastion.allowed_cidrs.clone(),
            vpc_cidr: net.spec.cidr_block.clone(),
        },
    );
    let report = status::report(Pass {
        outcome: &outcome,
        records: &kept,
        previous: &previous.common,
        generation,
        spec_changed,
        mode,
        gate: if paused { Gate::Paused } else { Gate::Active },
        compliance,
        now: jiff::Timestamp::now(),
    });
    // Metrics first: whoever sees the new status finds metrics at least as recent.
    record_pass_metrics(&net, ctx, &graph, &report);
    ctx.set_managed(KIND, &key, Some(report.status.resources.len() as i64));
    let status = network_status(&net.spec, report.status.clone(), &outcome);
    write_status(&api, &net, &status).await?;
    publish_pass_events(&net, ctx, &graph, &outcome, &report, &previous.common, mode).await;

    if let Some(error) = outcome.errors().find_map(|a| a.error.clone()) {
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

/// A spec the engine cannot build: say so in status and an event, call nothing on AWS
/// that changes anything. The error policy backs off (the next spec change retries).
async fn refuse(
    net: &HipaaNetwork,
    api: &Api<HipaaNetwork>,
    ctx: &Context,
    message: String,
) -> Result<Action, Error> {
    let previous = net.status.clone().unwrap_or_default();
    let mut common = previous.common.clone();
    let now = jiff::Timestamp::now();
    let generation = net.metadata.generation;
    let mut conditions = common.conditions.clone();
    for (type_, reason) in [
        (status::READY, "InvalidSpec"),
        (status::SYNCED, "InvalidSpec"),
    ] {
        status::set_condition(
            &mut conditions,
            &common.conditions,
            status::Cond {
                type_,
                status: "False",
                reason,
                message: message.clone(),
            },
            generation,
            now,
        );
    }
    common.conditions = conditions;
    common.observed_generation = generation;
    let status = HipaaNetworkStatus { common, ..previous };
    write_status(api, net, &status).await?;
    publish(
        ctx,
        net,
        EventType::Warning,
        "InvalidSpec",
        "Validate",
        message.clone(),
    )
    .await;
    Err(Error::InvalidSpec(message))
}

/// Deletes the AWS resources (or, with `deletionPolicy: Retain`, leaves them). Ok only
/// when nothing tagged with the object remains: the finalizer helper then removes the
/// finalizer.
pub async fn cleanup(net: Arc<HipaaNetwork>, ctx: &Context) -> Result<Action, Error> {
    let owner = owner_of(&net);
    let key = key_of(net.as_ref());
    let api: Api<HipaaNetwork> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    let previous = net.status.clone().unwrap_or_default();
    let now = jiff::Timestamp::now();
    if is_paused(net.as_ref()) {
        set_ready(&api, &net, "DeletionPaused", "annotation hipaa.dev/paused is \"true\": AWS resources are not deleted until it is removed".into(), now).await?;
        return Err(Error::PausedDeletion);
    }
    let cloud = ctx.clouds.get(&net.spec.common.region);
    let engine = Engine::new(cloud, ctx.settings.engine.clone());
    // A spec the blueprint cannot build still has resources to find by tag.
    let graph = blueprint::network::build(&owner, &net.spec).unwrap_or_else(|_| Graph {
        region: net.spec.common.region.clone(),
        ..Graph::default()
    });
    let records = records_of(&previous.common);
    let policy = net.spec.common.deletion_policy;
    let deletion = engine
        .finalize(&graph, &owner, &records, policy)
        .await
        .map_err(|e| Error::InvalidSpec(e.to_string()))?;
    for action in deletion
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Delete && a.error.is_none())
    {
        publish(
            ctx,
            net.as_ref(),
            EventType::Normal,
            "Deleted",
            "Delete",
            format!("deleted {} {}", action.kind.type_name(), action.node),
        )
        .await;
    }
    if deletion.done {
        let note = match policy {
            DeletionPolicy::Retain => format!(
                "deletionPolicy Retain: {} AWS resource(s) left in place, finalizer released",
                deletion.remaining.len()
            ),
            DeletionPolicy::Delete => {
                "every AWS resource tagged with this object is deleted".into()
            }
        };
        publish(
            ctx,
            net.as_ref(),
            EventType::Normal,
            "CleanupComplete",
            "Delete",
            note,
        )
        .await;
        forget_metrics(ctx, &net);
        ctx.set_managed(KIND, &key, None);
        ctx.succeeded(&key);
        return Ok(Action::await_change());
    }
    if let Some(error) = deletion
        .actions
        .iter()
        .find_map(|a| a.error.clone())
        .filter(|e| !e.retryable())
    {
        set_ready(&api, &net, "DeletionFailed", error.to_string(), now).await?;
        publish(
            ctx,
            net.as_ref(),
            EventType::Warning,
            error_reason(&error),
            "Delete",
            error.to_string(),
        )
        .await;
        return Err(Error::Cloud(error));
    }
    let remaining = deletion.remaining.len();
    set_ready(
        &api,
        &net,
        "Deleting",
        format!("{remaining} AWS resource(s) remain"),
        now,
    )
    .await?;
    Err(Error::CleanupPending(remaining))
}

/// Sets only the Ready condition (deletion progress), keeping the rest of the status.
async fn set_ready(
    api: &Api<HipaaNetwork>,
    net: &HipaaNetwork,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> Result<(), Error> {
    let mut status = net.status.clone().unwrap_or_default();
    let previous = status.common.conditions.clone();
    status::set_condition(
        &mut status.common.conditions,
        &previous,
        status::Cond {
            type_: status::READY,
            status: "False",
            reason,
            message,
        },
        net.metadata.generation,
        now,
    );
    write_status(api, net, &status).await
}

/// Writes the status through the status subresource when it changed. A JSON merge patch
/// of the whole status, with `null` for every field the new status no longer has.
async fn write_status(
    api: &Api<HipaaNetwork>,
    net: &HipaaNetwork,
    status: &HipaaNetworkStatus,
) -> Result<(), Error> {
    if net.status.as_ref() == Some(status) {
        return Ok(());
    }
    let mut patch = serde_json::to_value(status).unwrap_or(Value::Null);
    if let (Some(old), Value::Object(new)) = (
        net.status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok()),
        &mut patch,
    ) && let Value::Object(old) = old
    {
        for field in old.keys() {
            new.entry(field.clone()).or_insert(Value::Null);
        }
    }
    api.patch_status(
        &net.name_any(),
        &PatchParams::apply(MANAGER),
        &Patch::Merge(json!({ "status": patch })),
    )
    .await?;
    Ok(())
}

/// The kind's status: the common part plus the ids users and other stacks read.
fn network_status(
    spec: &HipaaNetworkSpec,
    common: CommonStatus,
    outcome: &Outcome,
) -> HipaaNetworkStatus {
    let find = |node: &str| common.resources.iter().find(|r| r.node == node);
    let id = |node: &str| find(node).and_then(|r| r.id.clone());
    let ids_under = |prefix: &str| -> Vec<String> {
        common
            .resources
            .iter()
            .filter(|r| r.node.starts_with(prefix))
            .filter_map(|r: &ManagedResource| r.id.clone())
            .collect()
    };
    let bastion_ip = outcome
        .nodes
        .iter()
        .find(|(node, _)| node == "instance/bastion")
        .and_then(|(_, s)| s.observed.as_ref())
        .and_then(|o| o.attributes.get("publicIp").cloned());
    HipaaNetworkStatus {
        vpc_id: id("vpc"),
        public_subnet_ids: ids_under("subnet/public/"),
        private_subnet_ids: ids_under("subnet/private/"),
        internet_gateway_id: id("igw"),
        nat_gateway_ids: ids_under("nat/"),
        bastion_instance_id: id("instance/bastion"),
        bastion_public_ip: bastion_ip,
        bastion_security_group_id: id("sg/bastion"),
        flow_log_id: id("flow-log"),
        flow_log_group: id("logs/flow-logs"),
        kms_key_arn: spec
            .common
            .kms_key_arn
            .clone()
            .or_else(|| find("kms/key").and_then(|r| r.arn.clone())),
        common,
    }
}

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

/// Event reason of an AWS error: one per error category.
fn error_reason(error: &CloudError) -> &'static str {
    match error {
        CloudError::Throttled { .. } => "AwsThrottled",
        CloudError::Server { .. } => "AwsServerError",
        CloudError::DependencyViolation { .. } => "AwsDependencyViolation",
        CloudError::NotFound { .. } => "AwsNotFound",
        CloudError::Terminal { .. } => "AwsRequestRefused",
    }
}

/// Publishes one event; a failure to publish is logged, never fails the reconcile.
async fn publish(
    ctx: &Context,
    net: &HipaaNetwork,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    // The events API caps notes at 1 KiB.
    let mut note = note;
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push('…');
    }
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &net.object_ref(&())).await {
        tracing::warn!(%error, reason, "publishing an event");
    }
}

async fn publish_pass_events(
    net: &HipaaNetwork,
    ctx: &Context,
    graph: &Graph,
    outcome: &Outcome,
    report: &status::Report,
    previous: &CommonStatus,
    mode: Mode,
) {
    let remediated: Vec<&str> = report
        .remediated
        .iter()
        .map(|d| d.resource.as_str())
        .collect();
    if !report.new_drift.is_empty() {
        let lines: Vec<String> = report
            .new_drift
            .iter()
            .map(|d| {
                format!(
                    "{} {}: spec {} / AWS {}",
                    d.resource, d.field, d.desired, d.actual
                )
            })
            .collect();
        publish(
            ctx,
            net,
            EventType::Warning,
            "DriftDetected",
            "Observe",
            lines.join("; "),
        )
        .await;
    }
    if mode == Mode::Remediate {
        for action in outcome.changes().filter(|a| a.error.is_none()) {
            let id = report
                .status
                .resources
                .iter()
                .find(|r| r.node == action.node)
                .and_then(|r| r.id.clone())
                .unwrap_or_default();
            let what = format!("{} {} {id}", action.kind.type_name(), action.node);
            let (reason, verb) = match action.action {
                ActionKind::Create if remediated.contains(&action.node.as_str()) => {
                    ("DriftRemediated", "Create")
                }
                ActionKind::Update if remediated.contains(&action.node.as_str()) => {
                    ("DriftRemediated", "Update")
                }
                ActionKind::Create => ("Created", "Create"),
                ActionKind::Update => ("Updated", "Update"),
                _ => ("Deleted", "Delete"),
            };
            publish(
                ctx,
                net,
                EventType::Normal,
                reason,
                verb,
                what.trim_end().to_string(),
            )
            .await;
        }
    }
    if let Some(failed) = outcome.errors().next()
        && let Some(error) = &failed.error
    {
        let count = outcome.errors().count();
        let more = if count > 1 {
            format!(" (and {} more)", count - 1)
        } else {
            String::new()
        };
        let kind = graph
            .node(&failed.node)
            .map(|n| n.kind().type_name())
            .unwrap_or_default();
        publish(
            ctx,
            net,
            EventType::Warning,
            error_reason(error),
            "Reconcile",
            format!("{kind} {}: {error}{more}", failed.node),
        )
        .await;
    }
    let was = |type_: &str| {
        status::condition(&previous.conditions, type_).map(|c| (c.status.clone(), c.reason.clone()))
    };
    let now = |type_: &str| {
        status::condition(&report.status.conditions, type_)
            .map(|c| (c.status.clone(), c.reason.clone()))
    };
    if now(status::READY).is_some_and(|(s, _)| s == "True")
        && was(status::READY).is_none_or(|(s, _)| s != "True")
    {
        publish(
            ctx,
            net,
            EventType::Normal,
            "Ready",
            "Reconcile",
            format!(
                "all {} AWS resources are available and match the spec",
                report.status.resources.len()
            ),
        )
        .await;
    }
    if now(status::SYNCED).is_some_and(|(_, r)| r == "ReconcilePaused")
        && was(status::SYNCED).is_none_or(|(_, r)| r != "ReconcilePaused")
    {
        publish(
            ctx,
            net,
            EventType::Normal,
            "ReconcilePaused",
            "Reconcile",
            "annotation hipaa.dev/paused is \"true\": AWS is observed, nothing is changed".into(),
        )
        .await;
    }
    if now(status::COMPLIANT).is_some_and(|(s, _)| s == "False")
        && was(status::COMPLIANT).is_none_or(|(s, _)| s != "False")
    {
        let message = status::condition(&report.status.conditions, status::COMPLIANT)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        publish(
            ctx,
            net,
            EventType::Warning,
            "ComplianceFailed",
            "Evaluate",
            message,
        )
        .await;
    }
}

fn record_pass_metrics(net: &HipaaNetwork, ctx: &Context, graph: &Graph, report: &status::Report) {
    let namespace = net.namespace().unwrap_or_default();
    let name = net.name_any();
    for drift in &report.new_drift {
        let resource_type = graph
            .node(&drift.resource)
            .map(|n| n.kind().type_name())
            .unwrap_or("unknown");
        ctx.metrics
            .drift_detected_total
            .with_label_values(&[KIND, resource_type])
            .inc();
    }
    ctx.metrics
        .resources_drifted
        .with_label_values(&[&namespace, &name, KIND])
        .set(report.drifted_resources as i64);
    for control in &report.status.compliance {
        let labels = [namespace.as_str(), name.as_str(), KIND, control.id.as_str()];
        if control.result == ControlResult::Failed {
            ctx.metrics
                .compliance_failed_controls
                .with_label_values(&labels)
                .set(1);
        } else {
            // Absent, not 0: alerts read `> 0` and dashboards count series.
            let _ = ctx
                .metrics
                .compliance_failed_controls
                .remove_label_values(&labels);
        }
    }
}

/// Drops the object's label sets (its namespace and name leave the label space).
fn forget_metrics(ctx: &Context, net: &HipaaNetwork) {
    let namespace = net.namespace().unwrap_or_default();
    let name = net.name_any();
    let _ = ctx
        .metrics
        .resources_drifted
        .remove_label_values(&[&namespace, &name, KIND]);
    for control in compliance::NETWORK_CONTROLS {
        let _ = ctx
            .metrics
            .compliance_failed_controls
            .remove_label_values(&[&namespace, &name, KIND, control]);
    }
}
