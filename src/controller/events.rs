//! Kubernetes Events for a pass: one per new drift, per change made, per failure class,
//! and per condition transition (Ready, paused, compliance failed). Reasons are fixed
//! UpperCamelCase words; notes carry the detail.

use kube::Resource;
use kube::runtime::events::{Event, EventType};

use super::Context;
use super::status::{self, Report};
use crate::api::CommonStatus;
use crate::blueprint::Graph;
use crate::cloud::CloudError;
use crate::engine::{ActionKind, Mode, Outcome};

/// Event reason of an AWS error: one per error category.
pub fn error_reason(error: &CloudError) -> &'static str {
    match error {
        CloudError::Throttled { .. } => "AwsThrottled",
        CloudError::Server { .. } => "AwsServerError",
        CloudError::DependencyViolation { .. } => "AwsDependencyViolation",
        CloudError::NotFound { .. } => "AwsNotFound",
        CloudError::Terminal { .. } => "AwsRequestRefused",
    }
}

/// The events API caps notes at 1 KiB: longer notes are cut at a character boundary
/// (leaving room for the trace id).
fn bounded(mut note: String) -> String {
    const MAX: usize = 960;
    if note.len() > MAX {
        let mut cut = MAX;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push('…');
    }
    note
}

/// Publishes one event about `object`; a failure to publish is logged, never fails the
/// reconcile.
pub async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let note = match super::current_trace_id() {
        Some(trace) => format!("{} (trace {trace})", bounded(note)),
        None => bounded(note),
    };
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, reason, "publishing an event");
    }
}

/// Everything a pass's events are made from.
pub struct PassEvents<'a> {
    pub graph: &'a Graph,
    pub outcome: &'a Outcome,
    pub report: &'a Report,
    pub previous: &'a CommonStatus,
    pub mode: Mode,
}

/// Publishes the events of one pass, in the order a reader wants them: what drifted,
/// what was changed, what failed, then how the conditions moved.
pub async fn publish_pass<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    pass: &PassEvents<'_>,
) {
    drift_detected(ctx, object, pass.report).await;
    if pass.mode == Mode::Remediate {
        changes_made(ctx, object, pass.outcome, pass.report).await;
    }
    first_failure(ctx, object, pass.graph, pass.outcome).await;
    transitions(ctx, object, pass.report, pass.previous).await;
}

/// One `DriftDetected` event listing the drift not reported before.
async fn drift_detected<K: Resource<DynamicType = ()>>(ctx: &Context, object: &K, report: &Report) {
    if report.new_drift.is_empty() {
        return;
    }
    let lines: Vec<String> = report
        .new_drift
        .iter()
        .map(|d| format!("{} {}: {}", d.resource, d.field, d.change))
        .collect();
    publish(
        ctx,
        object,
        EventType::Warning,
        "DriftDetected",
        "Observe",
        lines.join("; "),
    )
    .await;
}

/// One event per successful change: `Created`/`Updated`/`Deleted`, or `DriftRemediated`
/// when the change put back a drifted resource.
async fn changes_made<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    outcome: &Outcome,
    report: &Report,
) {
    let remediated = |node: &str| report.remediated.iter().any(|d| d.resource == node);
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
            ActionKind::Create if remediated(&action.node) => ("DriftRemediated", "Create"),
            ActionKind::Update if remediated(&action.node) => ("DriftRemediated", "Update"),
            ActionKind::Create => ("Created", "Create"),
            ActionKind::Update => ("Updated", "Update"),
            _ => ("Deleted", "Delete"),
        };
        publish(
            ctx,
            object,
            EventType::Normal,
            reason,
            verb,
            what.trim_end().to_string(),
        )
        .await;
    }
}

/// One warning for the pass's first failure, named by its AWS error class.
async fn first_failure<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    graph: &Graph,
    outcome: &Outcome,
) {
    let failed: Vec<_> = outcome.errors().collect();
    let note = match (failed.first(), &outcome.sweep_error) {
        (Some(first), _) => {
            let Some(error) = &first.error else { return };
            let more = if failed.len() > 1 {
                format!(" (and {} more)", failed.len() - 1)
            } else {
                String::new()
            };
            let kind = graph
                .node(&first.node)
                .map(|n| n.kind().type_name())
                .unwrap_or_default();
            (error, format!("{kind} {}: {error}{more}", first.node))
        }
        (None, Some(error)) => (
            error,
            format!("listing the AWS resources tagged with this object: {error}"),
        ),
        (None, None) => return,
    };
    publish(
        ctx,
        object,
        EventType::Warning,
        error_reason(note.0),
        "Reconcile",
        note.1,
    )
    .await;
}

/// `Ready`, `ReconcilePaused` and `ComplianceFailed` when the condition turns so.
async fn transitions<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    report: &Report,
    previous: &CommonStatus,
) {
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
        let note = format!(
            "all {} AWS resources are available and match the spec",
            report.status.resources.len()
        );
        publish(ctx, object, EventType::Normal, "Ready", "Reconcile", note).await;
    }
    if now(status::SYNCED).is_some_and(|(_, r)| r == "ReconcilePaused")
        && was(status::SYNCED).is_none_or(|(_, r)| r != "ReconcilePaused")
    {
        let note =
            "annotation hipaa.dev/paused is \"true\": AWS is observed, nothing is changed".into();
        publish(
            ctx,
            object,
            EventType::Normal,
            "ReconcilePaused",
            "Reconcile",
            note,
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
            object,
            EventType::Warning,
            "ComplianceFailed",
            "Evaluate",
            message,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_to_the_events_api_limit_on_a_character_boundary() {
        // (note, expected length in bytes): each row is one side of the limit.
        let rows = [
            ("a".repeat(960), 960),
            ("a".repeat(961), 960 + '…'.len_utf8()),
            // A 2-byte character straddling the limit is dropped whole.
            (format!("{}é", "a".repeat(959)), 959 + '…'.len_utf8()),
        ];
        for (note, want) in rows {
            assert_eq!(bounded(note.clone()).len(), want, "{} bytes", note.len());
        }
    }
}
