//! VPC flow logs to CloudWatch Logs: `CreateFlowLogs` (client token). AWS cannot modify a
//! flow log, so every spec change is refused; delete is immediate.

use super::SimCloud;
use super::api::{Result, immutable, not_found, ok_if_missing, sync_tags, terminal};
use super::nat::same_request;
use crate::cloud::{Desired, FlowLogSpec, Kind, Observed, Spec};

pub(crate) async fn create(sim: &SimCloud, d: &Desired) -> Result<Observed> {
    let Spec::FlowLog(FlowLogSpec {
        vpc_id,
        log_group_name,
        traffic_type,
        ..
    }) = &d.spec
    else {
        unreachable!("dispatched by kind")
    };
    let id = sim
        .call("ec2", "CreateFlowLogs", |w, now| {
            let op = "CreateFlowLogs";
            if let Some(existing) = w.by_token(Kind::FlowLog, &d.client_token) {
                return same_request(op, existing.token.as_ref(), &d.spec).map(|_| existing.id.clone());
            }
            if w.get(Kind::Vpc, vpc_id).is_none() {
                return Err(not_found(op, "InvalidVpcID.NotFound", format!("The vpc ID '{vpc_id}' does not exist")));
            }
            if !["ACCEPT", "REJECT", "ALL"].contains(&traffic_type.as_str()) {
                return Err(terminal(op, "InvalidParameterValue", format!("Invalid traffic type {traffic_type}")));
            }
            let duplicate = w.of_kind(Kind::FlowLog).any(|r| {
                matches!(&r.spec, Spec::FlowLog(FlowLogSpec { vpc_id: v, log_group_name: g, traffic_type: t, .. })
                    if v == vpc_id && g == log_group_name && t == traffic_type)
            });
            if duplicate {
                return Err(terminal(
                    op,
                    "FlowLogAlreadyExists",
                    format!("a flow log for {vpc_id} to {log_group_name} already exists"),
                ));
            }
            let id = w.new_id("fl-");
            w.insert(Kind::FlowLog, &id, d.spec.clone(), d.tags.clone(), now);
            if let Some(r) = w.get_mut(Kind::FlowLog, &id) {
                r.token = Some((d.client_token.clone(), d.spec.clone()));
            }
            Ok(id)
        })
        .await?;
    sim.snapshot(Kind::FlowLog, &id)
}

pub(crate) async fn update(sim: &SimCloud, d: &Desired, o: &Observed) -> Result<Observed> {
    for ((field, want), (_, have)) in d.spec.fields().iter().zip(&o.spec.fields()) {
        if want != have {
            return Err(immutable("CreateFlowLogs", field, have, want));
        }
    }
    sync_tags(sim, Kind::FlowLog, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::FlowLog, &o.id)
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = sim
        .call("ec2", "DeleteFlowLogs", |w, _| {
            if w.get(Kind::FlowLog, id).is_none() {
                return Err(not_found(
                    "DeleteFlowLogs",
                    "InvalidFlowLogId.NotFound",
                    format!("flow log {id} does not exist"),
                ));
            }
            w.remove(id);
            Ok(())
        })
        .await;
    ok_if_missing(result)
}
