//! The integration tests, one test binary: each file was its own binary, and each linked
//! the AWS SDK, kube-rs and the devcluster again. Modules keep the old file names, so
//! `cargo test --test it operator_sim::` runs what `--test operator_sim` did.
//!
//! Tests from every module now run side by side (cargo's default: one thread per core),
//! where the binaries used to run one after another. What they share is coordinated
//! here: moto's server is one account and one request log for the whole run
//! ([`common::moto_alone`], [`common::moto_shared`]); everything else is per test (a
//! devcluster, a kubectl home, a simulated account, free ports, owner tags).

mod common;

mod argocd_health;
mod audit_trail;
mod aws_network;
mod aws_payment;
mod contract;
mod crd_validation;
mod devcluster_api;
mod devcluster_kube;
mod devcluster_kubectl;
mod engine_network;
mod engine_payment;
mod helm_chart;
mod iam_policy;
mod operator_payment;
mod operator_process;
mod operator_references;
mod operator_sim;
mod otlp_export;
mod readme_walkthrough;
