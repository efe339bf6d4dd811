//! Types shared by the four custom resources: the fields every spec carries
//! (region, tags, policies), references between resources, and the status
//! shape every kind reports (conditions, managed resources, drift, compliance).
//!
//! Validation lives in the schema (OpenAPI bounds plus `x-kubernetes-validations`
//! CEL rules) so that the API server refuses bad input before the operator sees it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// AWS region names: commercial (`us-east-1`), GovCloud (`us-gov-west-1`) and ISO partitions.
pub const REGION_PATTERN: &str = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$";

/// A DNS name as Route53 and ACM accept it: lower-case labels of 1-63 characters, at least two labels.
pub const DOMAIN_PATTERN: &str =
    r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$";

/// The retention periods CloudWatch Logs accepts (`PutRetentionPolicy`), in days.
pub const LOG_RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Tag keys the operator writes itself; users may not set keys with these prefixes.
pub const RESERVED_TAG_PREFIXES: [&str; 2] = ["aws:", "hipaa.dev/"];

/// What happens to the AWS resources when the custom resource is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete every AWS resource tagged with this owner, in reverse dependency order.
    #[default]
    Delete,
    /// Leave every AWS resource in place (tags included) and only release the finalizer.
    Retain,
}

/// What the operator does when observed AWS state differs from the declared state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DriftPolicy {
    /// Change AWS back to the declared state and record what was changed.
    #[default]
    Remediate,
    /// Observe and report only (status, events, metrics); make no change on AWS.
    Report,
}

/// The fields every spec carries. Flattened into each kind's spec.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommonSpec {
    /// AWS region the resources are created in, e.g. `us-east-1`. Immutable: moving a
    /// stack between regions means creating a new one.
    #[schemars(regex(pattern = REGION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("region is immutable"))]
    pub region: String,

    /// Tags added to every AWS resource of this stack, next to the operator's own
    /// `hipaa.dev/*` ownership tags. At most 40 (AWS allows 50 per resource and the
    /// operator uses 3); keys up to 128 characters, values up to 256; keys starting with
    /// `aws:` or `hipaa.dev/` are reserved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 40, "additionalProperties" = {"type": "string", "maxLength": 256}))]
    #[x_kube(
        validation = Rule::new("self.all(k, !k.startsWith('aws:') && !k.startsWith('hipaa.dev/'))")
            .message("tag keys starting with 'aws:' or 'hipaa.dev/' are reserved"),
        validation = Rule::new("self.all(k, size(k) >= 1 && size(k) <= 128)")
            .message("tag keys must be 1 to 128 characters long"),
    )]
    pub tags: BTreeMap<String, String>,

    /// Days CloudWatch keeps this stack's logs (flow logs, access logs, database and
    /// function logs): one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545,
    /// 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653. Default 365; compliance control
    /// LOG-1 fails below the operator's configured minimum (365 unless changed).
    #[serde(default = "default_log_retention_days")]
    #[schemars(extend("enum" = LOG_RETENTION_DAYS))]
    pub log_retention_days: i32,

    /// ARN of an existing customer managed KMS key to encrypt this stack's data with. When
    /// absent the operator creates one key per stack, with rotation enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$"),
        length(max = 2048)
    )]
    pub kms_key_arn: Option<String>,

    /// `Delete` (default) removes every AWS resource of this stack when the custom resource
    /// is deleted; `Retain` leaves them in place and only releases the finalizer.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// `Remediate` (default) changes drifted AWS resources back; `Report` only observes and
    /// reports drift (status, events, metrics) and changes nothing on AWS.
    #[serde(default)]
    pub drift_policy: DriftPolicy,
}

/// A reference to another hipaa.dev resource in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalRef {
    /// Name of the referenced resource, in this resource's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key in a Kubernetes Secret in this resource's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Default for `logRetentionDays`: one year, the floor of compliance control LOG-1.
pub fn default_log_retention_days() -> i32 {
    365
}

/// The status every kind reports, flattened into each kind's status.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The trace id of the reconcile that last changed this status: its events carry the
    /// same id (`trace <id>` in the note) and so do its log lines (`trace_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,

    /// `Ready` (everything exists and is usable), `Synced` (the last reconcile reached AWS
    /// without error), `Drifted` (observed AWS state differs from the spec) and `Compliant`
    /// (every HIPAA control passes), each with a reason, a message and the generation it
    /// was computed for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Every AWS resource this stack manages, by its logical key in the stack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["node"]))]
    pub resources: Vec<ManagedResource>,

    /// One entry per drifted field found by the last observation. Empty when AWS matches
    /// the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<DriftEntry>,

    /// One entry per HIPAA control evaluated over observed state (the controls are listed in
    /// the operator's docs/hipaa-controls.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["id"]))]
    pub compliance: Vec<ComplianceEntry>,
}

/// An AWS resource the operator created and manages for this stack.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedResource {
    /// Logical key of the resource in the stack, e.g. `subnet/private/us-east-1a`; also
    /// the value of its `hipaa.dev/node` tag.
    pub node: String,
    /// AWS resource type, e.g. `ec2:vpc`, `rds:db-instance`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The AWS identifier (`vpc-0abc…`, a queue URL, a bucket name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The ARN, where the resource has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The AWS lifecycle state last observed (`available`, `pending`, `creating`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the operator created it. A resource AWS does not list yet (eventual
    /// consistency) shortly after this time is waited for, never created twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
}

/// One field of one AWS resource whose observed value differs from the declared one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftEntry {
    /// Logical key of the drifted resource (see `resources[].node`).
    pub resource: String,
    /// The drifted field, e.g. `ingress`, `mapPublicIpOnLaunch`, `tags.Environment`.
    pub field: String,
    /// The declared value, rendered as text.
    pub desired: String,
    /// The observed value, rendered as text (`<absent>` when the resource is gone).
    pub actual: String,
    /// What differs: for a list, `+ item` for what AWS has and the spec does not, `- item`
    /// for the reverse (e.g. `+ tcp/22 from 0.0.0.0/0`); for a value, `spec X, AWS Y`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub change: String,
    /// When this drift was first observed.
    pub detected_at: Time,
    /// What the operator did about it.
    pub action: DriftAction,
}

/// What the operator did about a drift entry.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DriftAction {
    /// AWS was changed back to the declared value.
    Remediated,
    /// `driftPolicy: Report` or the `hipaa.dev/paused` annotation: reported, not changed.
    Reported,
    /// A change back was attempted and failed; the `Synced` condition says why.
    RemediationFailed,
}

/// The result of one HIPAA control over observed AWS state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceEntry {
    /// Control id, e.g. `NET-1` (see the operator's docs/hipaa-controls.md).
    pub id: String,
    /// The HIPAA Security Rule citation, e.g. `45 CFR 164.312(b)`.
    pub citation: String,
    /// `Passed`, `Failed`, or `Unknown` when the state could not be observed (never
    /// reported as passed).
    pub result: ControlResult,
    /// What was checked and, on failure, which resource and value failed it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Outcome of a compliance control.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ControlResult {
    Passed,
    Failed,
    /// The API that would show the state was unavailable or denied.
    Unknown,
}
