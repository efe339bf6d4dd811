//! hipaa-operator: builds and keeps a HIPAA-aligned AWS architecture from four
//! Kubernetes custom resources.

pub mod api;
pub mod devcluster;
