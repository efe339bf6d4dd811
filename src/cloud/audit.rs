//! The audit trail of the operator's own changes: one structured line at info for every
//! mutating AWS call (target `hipaa_operator::audit`, field `audit = true`), naming the
//! custom resource, the node, the AWS service and operation, the resource id, why the
//! call was made, its outcome and AWS's request id. Read calls are not audited. Secrets
//! never reach it: the line carries names and ids, never request bodies.
//!
//! The engine knows why a call is made, the provider knows the request id: the engine
//! runs each change inside [`within`] (a task-local context), and both backends call
//! [`record`] for every call they make.

use std::future::Future;

use super::{CallOutcome, Owner};

/// Why the operator changed AWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A resource of the spec did not exist yet.
    Create,
    /// The spec changed (a new generation).
    SpecChange,
    /// AWS drifted from an unchanged spec (a field edited, a resource deleted).
    DriftRemediation,
    /// A change whose cause the caller did not say (engine used without a controller).
    Update,
    /// The custom resource is being deleted.
    Delete,
    /// A resource tagged with the owner that the spec no longer has.
    OrphanSweep,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Create => "create",
            Reason::SpecChange => "spec-change",
            Reason::DriftRemediation => "drift-remediation",
            Reason::Update => "update",
            Reason::Delete => "delete",
            Reason::OrphanSweep => "orphan-sweep",
        }
    }
}

/// What the engine is changing, for the calls made meanwhile.
#[derive(Clone, Debug)]
pub struct Context {
    pub owner: Owner,
    pub node: String,
    /// The AWS id when known before the call (updates, deletes); empty for a create.
    pub resource_id: String,
    pub reason: Reason,
}

tokio::task_local! {
    static CONTEXT: Context;
}

/// Runs `change` with `context` as the audit context of every call it makes.
pub async fn within<F: Future>(context: Context, change: F) -> F::Output {
    CONTEXT.scope(context, change).await
}

/// Whether an AWS operation changes something (everything but Describe/List/Get).
pub fn is_mutating(operation: &str) -> bool {
    !["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// Logs one call if it is mutating. Called by the backends for every call they make.
pub fn record(service: &str, operation: &str, outcome: CallOutcome, request_id: Option<&str>) {
    if !is_mutating(operation) {
        return;
    }
    let context = CONTEXT.try_with(Clone::clone).ok();
    let (kind, namespace, name, node, resource_id, reason) = match &context {
        Some(c) => (
            c.owner.kind.as_str(),
            c.owner.namespace.as_str(),
            c.owner.name.as_str(),
            c.node.as_str(),
            c.resource_id.as_str(),
            c.reason.as_str(),
        ),
        None => ("", "", "", "", "", "unattributed"),
    };
    tracing::info!(
        target: "hipaa_operator::audit",
        audit = true,
        kind,
        namespace,
        name,
        node,
        resource_id,
        reason,
        service,
        operation,
        outcome = outcome.as_str(),
        request_id = request_id.unwrap_or_default(),
        "AWS change"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_audited() {
        // (operation, audited): each row one family of AWS operation names.
        let rows = [
            ("DescribeVpcs", false),
            ("ListTagsForResource", false),
            ("GetRolePolicy", false),
            ("CreateVpc", true),
            ("RunInstances", true),
            ("AuthorizeSecurityGroupIngress", true),
            ("PutRetentionPolicy", true),
            ("ScheduleKeyDeletion", true),
            ("TerminateInstances", true),
        ];
        for (operation, audited) in rows {
            assert_eq!(is_mutating(operation), audited, "{operation}");
        }
    }
}
