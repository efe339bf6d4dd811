//! hipaa-operator: builds and keeps a HIPAA-aligned AWS architecture from four
//! Kubernetes custom resources.

pub mod api;
pub mod blueprint;
pub mod cloud;
pub mod compliance;
pub mod controller;
pub mod daemon;
pub mod demo;
/// The embedded Kubernetes API server (crate `hipaa-devcluster`), for the demo and tests.
pub use hipaa_devcluster as devcluster;
pub mod engine;
pub mod plan;
pub mod telemetry;
pub mod units;
