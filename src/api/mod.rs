//! The hipaa.dev/v1alpha1 API: the four custom resources, the only public contract.

// Each `#[kube(printcolumn(...))]` repeats the keys `type_`, `priority`…, which clippy
// mistakes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
pub mod backend;
pub mod common;
#[allow(clippy::duplicated_attributes)]
pub mod edge;
pub mod manifests;
#[allow(clippy::duplicated_attributes)]
pub mod network;
#[allow(clippy::duplicated_attributes)]
pub mod payment;
/// A CRD's schema applied as the API server does (defaults, structural, CEL); it lives in
/// the devcluster's crate, which enforces the same schemas.
pub use hipaa_devcluster::validation;

pub use backend::*;
pub use common::*;
pub use edge::*;
pub use network::*;
pub use payment::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every hipaa.dev kind.
pub const GROUP: &str = "hipaa.dev";

/// The CustomResourceDefinitions of every hipaa.dev kind, in dependency order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        HipaaNetwork::crd(),
        HipaaBackend::crd(),
        HipaaEdge::crd(),
        PaymentPipeline::crd(),
    ]
}

/// All CRDs as one multi-document YAML stream: what `hipaa-operator crds` prints and
/// `crds/hipaa.dev.yaml` holds.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml_ng::to_string(&crd).expect("a CRD always serializes to YAML"));
    }
    out
}
