//! HIPAA compliance evaluation over observed AWS state: a pure function from what observe
//! returned for a stack's nodes to one [`ComplianceEntry`] per control row.
//!
//! Result semantics, shared by every row:
//! - `Failed` when a resource the row reads violates the control, or a resource the row
//!   requires does not exist; the detail names the node key, the AWS id and the offending
//!   value. A definite violation wins over an unobservable node (the detail says both).
//! - `Unknown` when a node the row reads could not be observed (`Err`) and nothing failed:
//!   never `Passed` in that case.
//! - `Passed` otherwise, with a short detail of what was checked.

pub mod controls;
mod network;
pub mod payment;
mod rows;

use crate::cloud::{Kind, Observed};

pub use controls::{CONTROLS, Control};
pub use network::evaluate_network;
pub use payment::evaluate_payment;

/// The rows [`evaluate_payment`] reports, in the control table's order.
pub const PAYMENT_CONTROLS: [&str; 12] = [
    "LAM-1", "LAM-2", "LAM-3", "LAM-4", "SNS-1", "SQS-1", "SQS-2", "DDB-1", "DDB-2", "DDB-3",
    "KMS-1", "LOG-1",
];

/// The rows [`evaluate_network`] reports, in the control table's order. `EC2-3` is
/// reported only when the stack has application instances (keys `instance/app…`).
pub const NETWORK_CONTROLS: [&str; 11] = [
    "NET-1", "NET-2", "NET-3", "NET-4", "NET-5", "NET-6", "EC2-1", "EC2-2", "EC2-3", "KMS-1",
    "LOG-1",
];

/// One observed node of a stack: its logical key, kind and what observe returned
/// (`None`: the resource does not exist; `Err`: it could not be observed, e.g. AccessDenied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedNode {
    pub node: String,
    pub kind: Kind,
    pub observed: Result<Option<Observed>, String>,
}

/// What the rows compare observed state against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// LOG-1: minimum log group retention in days.
    pub min_log_retention_days: i32,
    /// NET-6: the bastion's declared SSH CIDRs.
    pub allowed_ssh_cidrs: Vec<String>,
    /// NET-6: the VPC CIDR application security groups may admit. When empty, the
    /// observed VPCs' CIDR blocks are used.
    pub vpc_cidr: String,
    /// LAM-1: the referenced network's private subnets. When empty, only "in a VPC" is
    /// checked.
    pub private_subnet_ids: Vec<String>,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            min_log_retention_days: 365,
            allowed_ssh_cidrs: Vec::new(),
            vpc_cidr: String::new(),
            private_subnet_ids: Vec::new(),
        }
    }
}

/// The citation of a control row, e.g. `citation("NET-1") == "45 CFR 164.312(b)"`;
/// `""` for an id that is not in the table.
pub fn citation(id: &str) -> &'static str {
    CONTROLS
        .iter()
        .find(|c| c.id == id)
        .map_or("", |c| c.citation)
}

#[cfg(test)]
mod tests;
