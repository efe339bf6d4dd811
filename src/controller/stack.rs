//! What a custom-resource kind gives the one generic controller: its blueprint, its
//! compliance rows, its status outputs and the object it references. Everything else —
//! finalizer, engine pass, status conditions, drift, events, metrics, backoff, waiting
//! for a reference, holding deletion while referrers exist — is the controller's, the
//! same for every kind.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::core::ApiResource;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{CommonSpec, CommonStatus, ComplianceEntry};
use crate::blueprint::{BlueprintError, Graph};
use crate::cloud::Owner;
use crate::compliance::ObservedNode;
use crate::engine::{Outcome, Recorded, Records};

/// The kind another kind references by name in the same namespace, and the spec field
/// that names it (`spec.networkRef.name`).
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The referenced kind, e.g. `HipaaNetwork`.
    pub kind: &'static str,
    /// The referrer's spec field holding `{name}`, e.g. `networkRef`.
    pub field: &'static str,
    /// The referenced kind's API resource (group, version, plural).
    pub resource: fn() -> ApiResource,
    /// The referenced object's status as `plan` shows it before the object exists: each
    /// output the referrer reads, as a placeholder naming it (`<clinic-net.vpcId>`).
    pub placeholder: fn(name: &str) -> serde_json::Value,
}

/// A referenced object as the referrer's blueprint reads it: its status, as JSON, once
/// it is Ready. Each kind reads the outputs it needs (`vpcId`, `privateSubnetIds`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct Referenced {
    pub name: String,
    pub status: serde_json::Value,
}

impl Referenced {
    /// A string output of the referenced status, e.g. `vpcId`.
    pub fn output(&self, field: &str) -> Option<&str> {
        self.status.get(field).and_then(serde_json::Value::as_str)
    }

    /// A list-of-strings output, e.g. `privateSubnetIds` (empty when absent).
    pub fn outputs(&self, field: &str) -> Vec<String> {
        self.status
            .get(field)
            .and_then(serde_json::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A custom-resource kind the generic controller reconciles.
///
/// Guarantees the controller relies on: [`blueprint`](Stack::blueprint) and
/// [`compliance`](Stack::compliance) are pure (no I/O), and the names the blueprint
/// gives AWS resources differ from every other kind's for the same namespace and name
/// (the ownership tags name the kind, AWS names do not).
pub trait Stack:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The kind's name, e.g. `HipaaNetwork`: metric label, owner tag, event text.
    const KIND: &'static str;
    /// The kind it references, if any (the controller then waits for that object to be
    /// Ready and reconciles the moment it becomes Ready or its outputs change).
    const TARGET: Option<Target> = None;
    /// The HIPAA control ids [`compliance`](Stack::compliance) may report (metric label
    /// sets are dropped by these when the object goes).
    const CONTROLS: &'static [&'static str];

    /// The kind's status type; [`CommonStatus`] is flattened into it.
    type Status: Clone + Debug + Default + PartialEq + Serialize + Send + Sync;

    fn common_spec(&self) -> &CommonSpec;
    fn status(&self) -> Option<&Self::Status>;
    fn common_status(status: &Self::Status) -> &CommonStatus;
    /// The kind's status with `common` replaced, keeping its outputs.
    fn with_common(status: Self::Status, common: CommonStatus) -> Self::Status;

    /// The name in `spec.<TARGET.field>.name`; `None` for kinds without a target.
    fn reference(&self) -> Option<&str> {
        None
    }

    /// The desired graph for this spec; `target` is the Ready referenced object for kinds
    /// with a [`TARGET`](Stack::TARGET), else `None`.
    fn blueprint(
        &self,
        owner: &Owner,
        target: Option<&Referenced>,
    ) -> Result<Graph, BlueprintError>;

    /// Availability zones the spec names, checked against the region (read-only calls)
    /// before the first change of each generation.
    fn availability_zones(&self) -> Vec<String> {
        Vec::new()
    }

    /// The HIPAA control rows over what the pass observed; `target` as for
    /// [`blueprint`](Stack::blueprint) (rows may compare with the referenced outputs).
    fn compliance(
        &self,
        nodes: &[ObservedNode],
        min_log_retention_days: i32,
        target: Option<&Referenced>,
    ) -> Vec<ComplianceEntry>;

    /// The status after a pass: `common` plus the ids and ARNs users and referrers read.
    fn status_after(&self, common: CommonStatus, outcome: &Outcome) -> Self::Status;
}

/// The AWS owner of an object: its kind, namespace and name.
pub fn owner_of<K: Stack>(object: &K) -> Owner {
    Owner::new(
        K::KIND,
        &object.namespace().unwrap_or_default(),
        &object.name_any(),
    )
}

/// The object's common status (default when it has none yet).
pub fn common_status_of<K: Stack>(object: &K) -> CommonStatus {
    object
        .status()
        .map(|s| K::common_status(s).clone())
        .unwrap_or_default()
}

/// The records the engine needs, from `status.resources`.
pub fn records_of(status: &CommonStatus) -> Records {
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

/// `Kind/namespace/name`: the key of per-object state (backoff, managed counts).
pub fn object_key<K: Stack>(object: &K) -> String {
    owner_of(object).to_string()
}
