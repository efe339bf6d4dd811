//! Pure: one engine pass -> the status every kind reports (resources, drift, conditions).
//!
//! Conditions follow the Kubernetes API conventions: each carries the generation it was
//! computed for, and `lastTransitionTime` moves only when its status flips, so an
//! unchanged pass produces an identical status (and no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::{
    CommonStatus, ComplianceEntry, ControlResult, DriftAction, DriftEntry, ManagedResource,
};
use crate::cloud::{Observed, State};
use crate::engine::{ActionKind, Mode, Outcome, Records};

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";
pub const DRIFTED: &str = "Drifted";
pub const COMPLIANT: &str = "Compliant";

/// Why the pass ran as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Normal reconcile under the spec's drift policy.
    Active,
    /// `hipaa.dev/paused: "true"`: observed and reported, nothing changed on AWS.
    Paused,
}

/// What a pass contributes to the status.
pub struct Pass<'a> {
    pub outcome: &'a Outcome,
    /// Records to keep (what the pass saw plus recent creates AWS does not list yet).
    pub records: &'a Records,
    pub previous: &'a CommonStatus,
    pub generation: Option<i64>,
    /// The spec changed since the last status: differences are the change being
    /// applied, not drift.
    pub spec_changed: bool,
    pub mode: Mode,
    pub gate: Gate,
    pub compliance: Vec<ComplianceEntry>,
    pub now: jiff::Timestamp,
}

/// The status a pass leads to, and what changed since the previous one (for events and
/// metrics).
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub status: CommonStatus,
    /// Drift entries not in the previous status (same resource and field).
    pub new_drift: Vec<DriftEntry>,
    /// Resources whose drift was changed back by this pass.
    pub remediated: Vec<DriftEntry>,
    /// Distinct resources still drifted after the pass.
    pub drifted_resources: usize,
}

/// Builds the status of a pass.
pub fn report(pass: Pass<'_>) -> Report {
    let resources = resources(&pass);
    let drift = if pass.spec_changed {
        Vec::new()
    } else {
        drift_entries(&pass)
    };
    let is_new = |e: &DriftEntry| {
        !pass.previous.drift.iter().any(|p| {
            p.resource == e.resource && p.field == e.field && p.action != DriftAction::Remediated
        })
    };
    let new_drift: Vec<DriftEntry> = drift.iter().filter(|e| is_new(e)).cloned().collect();
    let remediated: Vec<DriftEntry> = drift
        .iter()
        .filter(|e| e.action == DriftAction::Remediated)
        .cloned()
        .collect();
    let mut drifted: Vec<&str> = drift
        .iter()
        .filter(|e| e.action != DriftAction::Remediated)
        .map(|e| e.resource.as_str())
        .collect();
    drifted.dedup();
    let drifted_resources = drifted.len();

    let mut conditions = Vec::new();
    for cond in [
        ready_condition(&pass),
        synced_condition(&pass),
        drifted_condition(&drift, &remediated, drifted_resources),
        compliant_condition(&pass.compliance),
    ] {
        set_condition(
            &mut conditions,
            &pass.previous.conditions,
            cond,
            pass.generation,
            pass.now,
        );
    }

    Report {
        status: CommonStatus {
            observed_generation: pass.generation,
            // The status write stamps the trace id of the pass when the status changed.
            trace_id: pass.previous.trace_id.clone(),
            conditions,
            resources,
            drift,
            compliance: pass.compliance,
        },
        new_drift,
        remediated,
        drifted_resources,
    }
}

/// `Ready`: everything available and matching; else why not (an error, a withheld
/// change, or what is still in progress).
fn ready_condition(pass: &Pass<'_>) -> Cond<'static> {
    let outcome = pass.outcome;
    if outcome.ready {
        return cond(
            READY,
            true,
            "Available",
            "every AWS resource exists, is available and matches the spec".into(),
        );
    }
    if let Some(first) = outcome.errors().next() {
        let message = format!("{} failed; see the Synced condition", first.node);
        return cond(READY, false, "ReconcileError", message);
    }
    if outcome.sweep_error.is_some() {
        let message =
            "listing what is tagged with this object failed; see the Synced condition".into();
        return cond(READY, false, "ReconcileError", message);
    }
    if pass.gate == Gate::Paused || pass.mode == Mode::Report {
        let pending = outcome.changes().count();
        let reason = if pass.gate == Gate::Paused {
            "ReconcilePaused"
        } else {
            "ChangesWithheld"
        };
        let message =
            format!("{pending} change(s) to AWS withheld (no changes are made in this mode)");
        return cond(READY, false, reason, message);
    }
    let waiting: Vec<&str> = outcome
        .actions
        .iter()
        .filter(|a| a.action != ActionKind::NoOp)
        .map(|a| a.node.as_str())
        .collect();
    let message = format!("in progress: {}", summarize(&waiting));
    cond(READY, false, "Creating", message)
}

/// `Synced`: whether the pass reached AWS without error (or is paused).
fn synced_condition(pass: &Pass<'_>) -> Cond<'static> {
    let errors: Vec<_> = pass.outcome.errors().collect();
    if let Some(first) = errors.first() {
        let error = first
            .error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let more = if errors.len() > 1 {
            format!(" (and {} more failed)", errors.len() - 1)
        } else {
            String::new()
        };
        let message = format!("{} {}: {error}{more}", first.kind.type_name(), first.node);
        return cond(SYNCED, false, "ReconcileError", message);
    }
    if let Some(error) = &pass.outcome.sweep_error {
        let message = format!("listing the AWS resources tagged with this object: {error}");
        return cond(SYNCED, false, "ReconcileError", message);
    }
    match pass.gate {
        Gate::Paused => cond(
            SYNCED,
            false,
            "ReconcilePaused",
            "annotation hipaa.dev/paused is \"true\": AWS is observed, nothing is changed".into(),
        ),
        Gate::Active => cond(
            SYNCED,
            true,
            "ReconcileSuccess",
            "the last reconcile reached AWS without error".into(),
        ),
    }
}

/// `Drifted`: what still differs from the spec, or that drift was put back.
fn drifted_condition(
    drift: &[DriftEntry],
    remediated: &[DriftEntry],
    drifted_resources: usize,
) -> Cond<'static> {
    if drifted_resources > 0 {
        let failed = drift
            .iter()
            .any(|e| e.action == DriftAction::RemediationFailed);
        let fields: Vec<String> = drift
            .iter()
            .filter(|e| e.action != DriftAction::Remediated)
            .map(|e| format!("{} {}", e.resource, e.field))
            .collect();
        let reason = if failed {
            "RemediationFailed"
        } else {
            "DriftReported"
        };
        let listed: Vec<&str> = fields.iter().map(String::as_str).collect();
        let message = format!("AWS differs from the spec: {}", summarize(&listed));
        return cond(DRIFTED, true, reason, message);
    }
    if !remediated.is_empty() {
        let message = format!(
            "{} drifted field(s) changed back to the spec",
            remediated.len()
        );
        return cond(DRIFTED, false, "Remediated", message);
    }
    cond(DRIFTED, false, "NoDrift", "AWS matches the spec".into())
}

/// `Compliant`: False when a control failed, Unknown when one could not be evaluated.
fn compliant_condition(compliance: &[ComplianceEntry]) -> Cond<'static> {
    let with = |result: ControlResult| -> Vec<&str> {
        compliance
            .iter()
            .filter(|c| c.result == result)
            .map(|c| c.id.as_str())
            .collect()
    };
    let failed = with(ControlResult::Failed);
    if !failed.is_empty() {
        let message = format!("failed: {}", failed.join(", "));
        return cond(COMPLIANT, false, "ControlsFailed", message);
    }
    let unknown = with(ControlResult::Unknown);
    if !unknown.is_empty() {
        return Cond {
            type_: COMPLIANT,
            status: "Unknown",
            reason: "NotObservable",
            message: format!("could not be evaluated: {}", unknown.join(", ")),
        };
    }
    let message = format!("{} HIPAA controls passed", compliance.len());
    cond(COMPLIANT, true, "AllControlsPassed", message)
}

fn cond(type_: &'static str, status: bool, reason: &'static str, message: String) -> Cond<'static> {
    Cond {
        type_,
        status: if status { "True" } else { "False" },
        reason,
        message,
    }
}

/// Condition fields besides the generation and the transition time.
pub struct Cond<'a> {
    pub type_: &'a str,
    pub status: &'a str,
    pub reason: &'a str,
    pub message: String,
}

/// Appends (or replaces) a condition, keeping `lastTransitionTime` from `previous` when
/// the status did not flip.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    previous: &[Condition],
    cond: Cond<'_>,
    generation: Option<i64>,
    now: jiff::Timestamp,
) {
    let since = previous
        .iter()
        .find(|c| c.type_ == cond.type_ && c.status == cond.status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    conditions.retain(|c| c.type_ != cond.type_);
    conditions.push(Condition {
        type_: cond.type_.to_string(),
        status: cond.status.to_string(),
        reason: cond.reason.to_string(),
        message: cond.message,
        observed_generation: generation,
        last_transition_time: since,
    });
}

/// The condition of `type_` in `conditions`, if any.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `a, b, c and 4 more`.
fn summarize(items: &[&str]) -> String {
    const SHOWN: usize = 3;
    if items.is_empty() {
        return "nothing".into();
    }
    let shown = items[..items.len().min(SHOWN)].join(", ");
    if items.len() > SHOWN {
        format!("{shown} and {} more", items.len() - SHOWN)
    } else {
        shown
    }
}

fn resources(pass: &Pass<'_>) -> Vec<ManagedResource> {
    let mut out = Vec::new();
    for (node, state) in &pass.outcome.nodes {
        let observed = state.observed.as_ref();
        let recorded = pass.records.get(node);
        if observed.is_none() && recorded.is_none() {
            continue;
        }
        out.push(ManagedResource {
            node: node.clone(),
            type_: state.kind.type_name().to_string(),
            id: observed
                .map(|o| o.id.clone())
                .or_else(|| recorded.map(|r| r.id.clone())),
            arn: observed.and_then(|o| o.arn.clone()),
            state: Some(state_of(pass, node, observed).to_string()),
            created_at: state
                .created_at
                .or_else(|| recorded.and_then(|r| r.created_at))
                .map(Time),
        });
    }
    // Records of nodes the spec no longer has (kept until the sweep removes them).
    for (node, recorded) in pass.records {
        if out.iter().any(|r| &r.node == node) {
            continue;
        }
        let previous = pass.previous.resources.iter().find(|r| &r.node == node);
        out.push(ManagedResource {
            node: node.clone(),
            type_: previous.map(|p| p.type_.clone()).unwrap_or_default(),
            id: Some(recorded.id.clone()),
            arn: previous.and_then(|p| p.arn.clone()),
            state: Some("removing".into()),
            created_at: recorded.created_at.map(Time),
        });
    }
    out
}

/// The state a resource is reported in: AWS's (`pending`, `available`, `deleting`),
/// except [`CHANGING`] while AWS is still applying the operator's own create or update
/// (from the pass that made it until AWS is done), and `not-listed-yet` for one created
/// moments ago.
fn state_of(pass: &Pass<'_>, node: &str, observed: Option<&Observed>) -> &'static str {
    let Some(observed) = observed else {
        return "not-listed-yet";
    };
    let acted = pass.outcome.actions.iter().any(|a| {
        a.node == node
            && a.error.is_none()
            && matches!(a.action, ActionKind::Create | ActionKind::Update)
    });
    let was_changing = pass
        .previous
        .resources
        .iter()
        .any(|r| r.node == node && r.state.as_deref() == Some(CHANGING));
    if observed.state == State::Pending && (acted || was_changing) {
        CHANGING
    } else {
        observed.state.as_str()
    }
}

/// The reported state of a resource AWS is still creating or changing at the operator's
/// request: differences found once it is done complete that change and are not drift
/// (AWS turns some settings on only once a resource is available, e.g. a DynamoDB
/// table's point-in-time recovery).
pub const CHANGING: &str = "changing";

fn drift_entries(pass: &Pass<'_>) -> Vec<DriftEntry> {
    let completing = |node: &str| {
        pass.previous
            .resources
            .iter()
            .any(|r| r.node == node && r.state.as_deref() == Some(CHANGING))
    };
    pass.outcome
        .drift
        .iter()
        .filter(|d| !completing(&d.node))
        .map(|d| {
            let fix = pass.outcome.actions.iter().find(|a| {
                a.node == d.node && matches!(a.action, ActionKind::Create | ActionKind::Update)
            });
            let action = match (pass.mode, fix) {
                (Mode::Remediate, Some(a)) if a.error.is_none() => DriftAction::Remediated,
                (Mode::Remediate, Some(_)) => DriftAction::RemediationFailed,
                _ => DriftAction::Reported,
            };
            let detected_at = pass
                .previous
                .drift
                .iter()
                .find(|p| {
                    p.resource == d.node
                        && p.field == d.field
                        && p.action != DriftAction::Remediated
                })
                .map(|p| p.detected_at.clone())
                .unwrap_or(Time(pass.now));
            DriftEntry {
                resource: d.node.clone(),
                field: d.field.clone(),
                desired: d.desired.clone(),
                actual: d.actual.clone(),
                change: d.change.clone(),
                detected_at,
                action,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ManagedResource;
    use crate::cloud::{CloudError, Kind};
    use crate::engine::{Action, FieldDrift};

    fn action(node: &str, kind: ActionKind, error: Option<CloudError>) -> Action {
        Action {
            node: node.into(),
            kind: Kind::SecurityGroup,
            action: kind,
            reason: String::new(),
            error,
        }
    }

    fn drift(node: &str, field: &str) -> FieldDrift {
        FieldDrift {
            node: node.into(),
            field: field.into(),
            desired: "[]".into(),
            actual: "[tcp 22 0.0.0.0/0]".into(),
            change: "+ tcp/22 from 0.0.0.0/0".into(),
        }
    }

    fn denied() -> CloudError {
        CloudError::Terminal {
            operation: "AuthorizeSecurityGroupIngress".into(),
            code: "UnauthorizedOperation".into(),
            message: "not authorized".into(),
        }
    }

    fn status_of(
        outcome: &Outcome,
        previous: &CommonStatus,
        mode: Mode,
        gate: Gate,
        spec_changed: bool,
    ) -> Report {
        report(Pass {
            outcome,
            records: &Records::new(),
            previous,
            generation: Some(2),
            spec_changed,
            mode,
            gate,
            compliance: Vec::new(),
            now: "2026-11-29T12:00:00Z".parse().unwrap(),
        })
    }

    fn cond<'a>(r: &'a Report, type_: &str) -> &'a Condition {
        condition(&r.status.conditions, type_).unwrap()
    }

    #[test]
    fn drift_action_follows_what_the_pass_did() {
        // (mode, gate, fix action, expected drift action, Drifted status, reason): each row
        // proves how one pass outcome is reported.
        let rows = [
            (
                Mode::Remediate,
                Gate::Active,
                Some(action("sg/bastion", ActionKind::Update, None)),
                DriftAction::Remediated,
                "False",
                "Remediated",
            ),
            (
                Mode::Remediate,
                Gate::Active,
                Some(action("sg/bastion", ActionKind::Update, Some(denied()))),
                DriftAction::RemediationFailed,
                "True",
                "RemediationFailed",
            ),
            (
                Mode::Report,
                Gate::Active,
                Some(action("sg/bastion", ActionKind::Update, None)),
                DriftAction::Reported,
                "True",
                "DriftReported",
            ),
            (
                Mode::Report,
                Gate::Paused,
                Some(action("sg/bastion", ActionKind::Update, None)),
                DriftAction::Reported,
                "True",
                "DriftReported",
            ),
            // Remediation waits on something else: not remediated yet.
            (
                Mode::Remediate,
                Gate::Active,
                None,
                DriftAction::Reported,
                "True",
                "DriftReported",
            ),
        ];
        for (mode, gate, fix, want, drifted, reason) in rows {
            let outcome = Outcome {
                drift: vec![drift("sg/bastion", "ingress")],
                actions: fix.into_iter().collect(),
                ..Outcome::default()
            };
            let r = status_of(&outcome, &CommonStatus::default(), mode, gate, false);
            assert_eq!(r.status.drift[0].action, want, "{mode:?} {gate:?}");
            assert_eq!(cond(&r, DRIFTED).status, drifted, "{mode:?} {gate:?}");
            assert_eq!(cond(&r, DRIFTED).reason, reason, "{mode:?} {gate:?}");
            assert_eq!(r.new_drift.len(), 1);
        }
    }

    #[test]
    fn differences_that_complete_the_operators_own_change_are_not_drift() {
        let table = |state: State| crate::engine::NodeState {
            kind: Kind::DynamoDbTable,
            observed: Some(Observed {
                id: "t".into(),
                arn: None,
                state,
                spec: crate::cloud::Spec::DynamoDbTable(Default::default()),
                tags: Default::default(),
                attributes: Default::default(),
            }),
            created_at: None,
            unobservable: None,
        };
        let previous = |state: &str| CommonStatus {
            resources: vec![ManagedResource {
                node: "dynamodb/table".into(),
                state: Some(state.into()),
                ..ManagedResource::default()
            }],
            ..CommonStatus::default()
        };
        let reported = |r: &Report| r.status.resources[0].state.clone().unwrap();
        // Created this pass and still CREATING: changing.
        let created = Outcome {
            nodes: vec![("dynamodb/table".into(), table(State::Pending))],
            actions: vec![action("dynamodb/table", ActionKind::Create, None)],
            ..Outcome::default()
        };
        let r = status_of(
            &created,
            &CommonStatus::default(),
            Mode::Remediate,
            Gate::Active,
            false,
        );
        assert_eq!(reported(&r), CHANGING);
        // Still CREATING a pass later, with no action: still changing.
        let waiting = Outcome {
            nodes: vec![("dynamodb/table".into(), table(State::Pending))],
            ..Outcome::default()
        };
        let r = status_of(
            &waiting,
            &previous(CHANGING),
            Mode::Remediate,
            Gate::Active,
            false,
        );
        assert_eq!(reported(&r), CHANGING);
        // ACTIVE, PITR turned on by this pass: completing the create, not drift.
        let done = Outcome {
            nodes: vec![("dynamodb/table".into(), table(State::Available))],
            drift: vec![drift("dynamodb/table", "pointInTimeRecovery")],
            actions: vec![action("dynamodb/table", ActionKind::Update, None)],
            ..Outcome::default()
        };
        let r = status_of(
            &done,
            &previous(CHANGING),
            Mode::Remediate,
            Gate::Active,
            false,
        );
        assert!(
            r.status.drift.is_empty() && r.new_drift.is_empty(),
            "{:?}",
            r.status.drift
        );
        assert_eq!(reported(&r), "available");
        // The same difference on a table that was available: drift.
        let r = status_of(
            &done,
            &previous("available"),
            Mode::Remediate,
            Gate::Active,
            false,
        );
        assert_eq!(r.new_drift.len(), 1);
        // Pending without the operator's change (someone else's update in progress):
        // AWS's state, and what is found afterwards is drift.
        let r = status_of(
            &waiting,
            &previous("available"),
            Mode::Remediate,
            Gate::Active,
            false,
        );
        assert_eq!(reported(&r), "pending");
        let r = status_of(
            &done,
            &previous("pending"),
            Mode::Remediate,
            Gate::Active,
            false,
        );
        assert_eq!(r.new_drift.len(), 1);
    }

    #[test]
    fn a_spec_change_is_not_drift() {
        let outcome = Outcome {
            drift: vec![drift("sg/bastion", "ingress")],
            actions: vec![action("sg/bastion", ActionKind::Update, None)],
            ..Outcome::default()
        };
        let r = status_of(
            &outcome,
            &CommonStatus::default(),
            Mode::Remediate,
            Gate::Active,
            true,
        );
        assert!(r.status.drift.is_empty());
        assert!(r.new_drift.is_empty());
        assert_eq!(cond(&r, DRIFTED).reason, "NoDrift");
    }

    #[test]
    fn reported_drift_keeps_its_first_detection_time_and_is_new_once() {
        let outcome = Outcome {
            drift: vec![drift("sg/bastion", "ingress")],
            ..Outcome::default()
        };
        let first = status_of(
            &outcome,
            &CommonStatus::default(),
            Mode::Report,
            Gate::Active,
            false,
        );
        let later = report(Pass {
            outcome: &outcome,
            records: &Records::new(),
            previous: &first.status,
            generation: Some(2),
            spec_changed: false,
            mode: Mode::Report,
            gate: Gate::Active,
            compliance: Vec::new(),
            now: "2026-11-29T12:05:00Z".parse().unwrap(),
        });
        assert_eq!(
            later.status.drift[0].detected_at,
            first.status.drift[0].detected_at
        );
        assert!(
            later.new_drift.is_empty(),
            "the same drift is not new twice"
        );
        // Nothing flipped: the whole status is identical, so no write is needed.
        assert_eq!(later.status, first.status);
    }

    #[test]
    fn errors_make_synced_false_with_the_aws_message_and_paused_says_so() {
        let outcome = Outcome {
            actions: vec![action("vpc", ActionKind::Create, Some(denied()))],
            ..Outcome::default()
        };
        let r = status_of(
            &outcome,
            &CommonStatus::default(),
            Mode::Remediate,
            Gate::Active,
            false,
        );
        let synced = cond(&r, SYNCED);
        assert_eq!(
            (synced.status.as_str(), synced.reason.as_str()),
            ("False", "ReconcileError")
        );
        assert!(
            synced
                .message
                .contains("UnauthorizedOperation: not authorized"),
            "{}",
            synced.message
        );
        assert_eq!(cond(&r, READY).status, "False");

        let idle = Outcome {
            ready: true,
            ..Outcome::default()
        };
        let r = status_of(
            &idle,
            &CommonStatus::default(),
            Mode::Report,
            Gate::Paused,
            false,
        );
        assert_eq!(cond(&r, SYNCED).reason, "ReconcilePaused");
        assert_eq!(cond(&r, READY).status, "True");
        assert_eq!(r.status.observed_generation, Some(2));
        assert!(
            r.status
                .conditions
                .iter()
                .all(|c| c.observed_generation == Some(2))
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut conditions = Vec::new();
        let t0: jiff::Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let t1: jiff::Timestamp = "2026-11-29T13:00:00Z".parse().unwrap();
        let c = |status: &'static str, reason: &'static str| Cond {
            type_: READY,
            status,
            reason,
            message: String::new(),
        };
        set_condition(&mut conditions, &[], c("False", "Creating"), Some(1), t0);
        let previous = conditions.clone();
        let mut next = Vec::new();
        set_condition(&mut next, &previous, c("False", "Waiting"), Some(1), t1);
        assert_eq!(
            next[0].last_transition_time,
            Time(t0),
            "same status: time kept"
        );
        let mut flipped = Vec::new();
        set_condition(&mut flipped, &previous, c("True", "Available"), Some(1), t1);
        assert_eq!(
            flipped[0].last_transition_time,
            Time(t1),
            "flipped: time moves"
        );
    }
}
