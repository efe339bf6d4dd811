//! The per-object metrics a pass sets (drift found, drifted resources, failed controls)
//! and drops when the object goes. Labels: the object's namespace and name, its kind,
//! AWS resource types and control ids: never error text.

use kube::ResourceExt;

use super::Context;
use super::stack::Stack;
use super::status::Report;
use crate::api::ControlResult;
use crate::blueprint::Graph;

/// Sets the metrics of one pass. Called before the status write, so that whoever reads
/// the new status finds metrics at least as recent.
pub fn record<K: Stack>(object: &K, ctx: &Context, graph: &Graph, report: &Report) {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    for drift in &report.new_drift {
        let resource_type = graph
            .node(&drift.resource)
            .map(|n| n.kind().type_name())
            .unwrap_or("unknown");
        ctx.metrics
            .drift_detected_total
            .with_label_values(&[K::KIND, resource_type])
            .inc();
    }
    ctx.metrics
        .resources_drifted
        .with_label_values(&[&namespace, &name, K::KIND])
        .set(report.drifted_resources as i64);
    for control in &report.status.compliance {
        let labels = [
            namespace.as_str(),
            name.as_str(),
            K::KIND,
            control.id.as_str(),
        ];
        if control.result == ControlResult::Failed {
            ctx.metrics
                .compliance_failed_controls
                .with_label_values(&labels)
                .set(1);
        } else {
            // Absent, not 0: alerts read `> 0` and dashboards count series.
            let _ = ctx
                .metrics
                .compliance_failed_controls
                .remove_label_values(&labels);
        }
    }
}

/// Drops the object's label sets (its namespace and name leave the label space).
pub fn forget<K: Stack>(ctx: &Context, object: &K) {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let _ = ctx
        .metrics
        .resources_drifted
        .remove_label_values(&[&namespace, &name, K::KIND]);
    for control in K::CONTROLS {
        let _ = ctx
            .metrics
            .compliance_failed_controls
            .remove_label_values(&[&namespace, &name, K::KIND, control]);
    }
}
