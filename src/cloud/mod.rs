//! The Provider boundary: every AWS resource kind behind the same four verbs (observe,
//! create, update, delete), with two backends — `sim` (an in-memory AWS for the demo,
//! tests and benchmarks) and `aws` (the AWS SDK for Rust). Both write the audit trail of
//! every mutating call (`audit`).
//!
//! The engine speaks only these types: a [`Desired`] resource (its kind's spec with
//! references already resolved to AWS ids, and its tags) and an [`Observed`] one (what
//! AWS reports, in the same spec shape, plus id, ARN and lifecycle state). Because both
//! sides use one shape, drift is a field-by-field comparison of two specs.
//!
//! `kind.rs` is the kind registry (what each kind is, said once); `spec.rs` the spec
//! struct of each kind and the [`Spec`] enum over them.

pub mod any;
pub mod audit;
pub mod aws;
pub mod iam_policy;
mod kind;
pub mod sim;
mod spec;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use kind::{
    DeleteMode, Idempotency, Kind, KindInfo, OPERATOR_FUNCTIONS, OPERATOR_ROLES, Parent,
    STACK_CALLS,
};
pub use spec::*;

/// Tag keys every managed resource carries: the owner (`Kind/namespace/name`), the node
/// (its logical key in the stack) and the manager.
/// The log group attribute naming its log streams (`<group ARN>:log-stream:*`): the
/// resource of `logs:CreateLogStream`/`logs:PutLogEvents` in a writer's role.
pub const STREAMS_ARN: &str = "streamsArn";

/// The function attribute saying how a function can be invoked from outside its account
/// (a resource policy for any principal, a function URL without IAM auth); absent when it
/// cannot. HIPAA control LAM-3 reads it.
pub const PUBLIC_ACCESS: &str = "publicAccess";

pub const TAG_OWNER: &str = "hipaa.dev/owner";
pub const TAG_NODE: &str = "hipaa.dev/node";
pub const TAG_MANAGED_BY: &str = "hipaa.dev/managed-by";
pub const MANAGED_BY: &str = "hipaa-operator";

/// Tag keys a Lambda function's backend writes itself, next to the ownership tags: the
/// source its code was deployed from (`s3://bucket/key[?versionId=v]`) and the
/// `CodeSha256` AWS answered for it (see [`LambdaFunctionSpec::code`]). They are never
/// among the desired tags, so the engine's drift (which ignores tags it did not ask for)
/// does not see them; the backend compares them with the function's `CodeSha256`.
pub const TAG_CODE: &str = "hipaa.dev/code";
pub const TAG_CODE_SHA256: &str = "hipaa.dev/code-sha256";

/// Who owns a resource: the custom resource it was created for. Its text form,
/// `Kind/namespace/name`, is the value of the `hipaa.dev/owner` tag and the seed of the
/// idempotency tokens, so two custom resources of different kinds that share a namespace
/// and a name never see each other's resources.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Owner {
    /// The custom resource's kind, e.g. `HipaaNetwork`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl Owner {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Owner {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// The tags the operator puts on every resource it creates for `owner` as node `node`,
/// next to the user's tags.
pub fn ownership_tags(
    owner: &Owner,
    node: &str,
    user: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags = user.clone();
    tags.insert(TAG_OWNER.into(), owner.to_string());
    tags.insert(TAG_NODE.into(), node.into());
    tags.insert(TAG_MANAGED_BY.into(), MANAGED_BY.into());
    tags
}

/// A resource as the engine wants it, references resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Logical key in the stack (also the `hipaa.dev/node` tag).
    pub node: String,
    pub spec: Spec,
    /// All tags, the ownership tags included.
    pub tags: BTreeMap<String, String>,
    /// Idempotency token for APIs that take one (`ClientToken`, `CallerReference`):
    /// stable for the owner and node, so a retried create returns the first one.
    pub client_token: String,
}

/// Lifecycle state of an observed resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Being created (NAT `pending`, instance `pending`): exists, not yet usable.
    Pending,
    Available,
    /// Being deleted (NAT `deleting`, instance `shutting-down`).
    Deleting,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Available => "available",
            State::Deleting => "deleting",
        }
    }
}

/// What a create of a kind without idempotency returns when the resource exists but a
/// follow-up call (rotation, an attachment) failed: the resource as created, `Pending`.
/// Never an error: the engine retries a failed create, and a second create of such a
/// kind makes a second resource that a lookup by tags may not see yet (AWS's listing
/// lags). The engine records it, and the next pass completes it by update (the status
/// counts that as completing the create, not as drift).
pub fn settings_pending(mut created: Observed, error: &CloudError) -> Observed {
    tracing::info!(id = %created.id, %error, "created; what failed after the create is completed by the next update");
    created.state = State::Pending;
    created
}

/// A resource as AWS reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub arn: Option<String>,
    pub state: State,
    pub spec: Spec,
    pub tags: BTreeMap<String, String>,
    /// Read-only attributes other resources or the status use (e.g. `publicIp`).
    pub attributes: BTreeMap<String, String>,
}

/// What observe looks for: a resource by its recorded id, else by ownership tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    pub node: String,
    pub recorded_id: Option<String>,
    /// The desired spec, references resolved, when known: kinds AWS creates itself (the
    /// VPC's default security group) are found through it (its `vpc_id`).
    pub desired: Option<Spec>,
}

/// A resource tagged with an owner, as a tag search finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    pub kind: Kind,
    pub id: String,
    /// Its `hipaa.dev/node` tag: the node of the stack it was created for.
    pub node: String,
}

/// An error from a provider, classified as the engine's retry policy needs it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// Rate exceeded: retry with backoff.
    #[error("{operation}: throttled: {message}")]
    Throttled { operation: String, message: String },
    /// AWS-side failure (5xx): retry with backoff.
    #[error("{operation}: server error: {message}")]
    Server { operation: String, message: String },
    /// The resource is still in use (deleting a VPC with subnets): retry later.
    #[error("{operation}: dependency violation: {message}")]
    DependencyViolation { operation: String, message: String },
    /// The resource does not exist.
    #[error("{operation}: not found: {message}")]
    NotFound { operation: String, message: String },
    /// Invalid request, access denied, quota: retrying the same request will not help.
    #[error("{operation}: {code}: {message}")]
    Terminal {
        operation: String,
        code: String,
        message: String,
    },
}

impl CloudError {
    /// Worth retrying the same request later.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            CloudError::Throttled { .. }
                | CloudError::Server { .. }
                | CloudError::DependencyViolation { .. }
        )
    }

    /// A create refused because the name is taken: `…AlreadyExists`, `…Duplicate`, or
    /// DynamoDB's `ResourceInUseException` (which the backends return as terminal only
    /// from `CreateTable`; from other calls it is a dependency to wait out). The engine
    /// looks for the resource by its tags before trying again.
    pub fn already_exists(&self) -> bool {
        matches!(self, CloudError::Terminal { code, .. }
            if code.contains("AlreadyExists")
                || code.contains("Duplicate")
                || code == "ResourceInUseException")
    }

    /// A fixed, low-cardinality category for metric labels and event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            CloudError::Throttled { .. } => "throttled",
            CloudError::Server { .. } => "server_error",
            CloudError::DependencyViolation { .. } => "dependency_violation",
            CloudError::NotFound { .. } => "not_found",
            CloudError::Terminal { .. } => "client_error",
        }
    }
}

/// Outcome label of one API call, for `hipaa_operator_aws_api_calls_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CallOutcome {
    Ok,
    Throttled,
    ClientError,
    ServerError,
}

impl CallOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Throttled => "throttled",
            CallOutcome::ClientError => "client_error",
            CallOutcome::ServerError => "server_error",
        }
    }
}

/// Counted API calls: (service, operation, outcome) -> count.
pub type CallCounts = BTreeMap<(String, String, CallOutcome), u64>;

/// The four verbs every kind offers. Implementations are idempotent: create applies the
/// tags at creation and honours the client token; update changes only what differs;
/// delete of a missing resource succeeds.
#[allow(async_fn_in_trait)]
pub trait Provider: Send + Sync {
    /// Finds the resources of one kind for one owner, by recorded id first, then by the
    /// ownership tags; one batched call per kind where the API allows. No side effects.
    /// Returns, for each lookup, what was found (None: nothing).
    async fn observe(
        &self,
        kind: Kind,
        owner: &Owner,
        lookups: &[Lookup],
    ) -> Result<Vec<Option<Observed>>, CloudError>;

    /// Creates the resource with its tags.
    async fn create(&self, desired: &Desired) -> Result<Observed, CloudError>;

    /// Makes `observed` match `desired` (same kind and id), changing only what differs.
    async fn update(&self, desired: &Desired, observed: &Observed) -> Result<Observed, CloudError>;

    /// Deletes the resource; a missing one is success.
    async fn delete(&self, kind: Kind, id: &str) -> Result<(), CloudError>;

    /// Every resource tagged with `owner`, of any kind: what delete must leave empty.
    async fn owned(&self, owner: &Owner) -> Result<Vec<Owned>, CloudError>;

    /// API calls made so far.
    fn calls(&self) -> CallCounts;

    /// Availability zones of a region, for plan-time checks.
    async fn availability_zones(&self, region: &str) -> Result<Vec<String>, CloudError>;
}
