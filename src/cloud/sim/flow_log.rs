//! VPC flow logs to CloudWatch Logs: `CreateFlowLogs` (client token). AWS cannot modify a
//! flow log, so every spec change is refused; delete is immediate.

use super::SimCloud;
use super::api::{Result, not_found, ok_if_missing, sync_tags, terminal};
use super::nat::same_request;
use crate::cloud::{Desired, FlowLogSpec, Kind, Observed};

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &FlowLogSpec) -> Result<Observed> {
    let FlowLogSpec {
        vpc_id,
        log_group_name,
        traffic_type,
        ..
    } = spec;
    let id = sim
        .call("ec2", "CreateFlowLogs", |w, now| {
            let op = "CreateFlowLogs";
            if let Some(existing) = w.by_token(Kind::FlowLog, &d.client_token) {
                return same_request(op, existing.token.as_ref(), &d.spec)
                    .map(|_| existing.id.clone());
            }
            if w.get(Kind::Vpc, vpc_id).is_none() {
                return Err(not_found(
                    op,
                    "InvalidVpcID.NotFound",
                    format!("The vpc ID '{vpc_id}' does not exist"),
                ));
            }
            if !["ACCEPT", "REJECT", "ALL"].contains(&traffic_type.as_str()) {
                return Err(terminal(
                    op,
                    "InvalidParameterValue",
                    format!("Invalid traffic type {traffic_type}"),
                ));
            }
            let duplicate = w.specs::<FlowLogSpec>().any(|(_, log)| {
                log.vpc_id == *vpc_id
                    && log.log_group_name == *log_group_name
                    && log.traffic_type == *traffic_type
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

/// Every field is immutable (`KindInfo::immutable`): only tags change.
pub(crate) async fn update(sim: &SimCloud, d: &Desired, o: &Observed) -> Result<Observed> {
    d.spec.check_immutable("CreateFlowLogs", &o.spec)?;
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
