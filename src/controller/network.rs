//! HipaaNetwork as a [`Stack`]: the network blueprint, the network's HIPAA rows and the
//! ids referrers read (VPC, its CIDR, subnets, the bastion's security group).

use crate::api::{
    CommonSpec, CommonStatus, ComplianceEntry, HipaaNetwork, HipaaNetworkStatus, ManagedResource,
};
use crate::blueprint::{self, BlueprintError, Graph};
use crate::cloud::Owner;
use crate::compliance::{self, ObservedNode};
use crate::engine::Outcome;

use super::stack::{Referenced, Stack};

/// A network's outputs that referrers read, as placeholders for `plan` (see
/// [`Target::placeholder`](super::stack::Target::placeholder)).
pub fn planned_outputs(name: &str) -> serde_json::Value {
    serde_json::json!({
        "vpcId": format!("<{name}.vpcId>"),
        "vpcCidrBlock": format!("<{name}.vpcCidrBlock>"),
        "privateSubnetIds": [format!("<{name}.privateSubnetIds>")],
        "publicSubnetIds": [format!("<{name}.publicSubnetIds>")],
        "bastionSecurityGroupId": format!("<{name}.bastionSecurityGroupId>"),
    })
}

impl Stack for HipaaNetwork {
    const KIND: &'static str = "HipaaNetwork";
    const CONTROLS: &'static [&'static str] = &compliance::NETWORK_CONTROLS;
    type Status = HipaaNetworkStatus;

    fn common_spec(&self) -> &CommonSpec {
        &self.spec.common
    }

    fn status(&self) -> Option<&HipaaNetworkStatus> {
        self.status.as_ref()
    }

    fn common_status(status: &HipaaNetworkStatus) -> &CommonStatus {
        &status.common
    }

    fn with_common(status: HipaaNetworkStatus, common: CommonStatus) -> HipaaNetworkStatus {
        HipaaNetworkStatus { common, ..status }
    }

    fn blueprint(&self, owner: &Owner, _: Option<&Referenced>) -> Result<Graph, BlueprintError> {
        blueprint::network::build(owner, &self.spec)
    }

    fn availability_zones(&self) -> Vec<String> {
        self.spec.availability_zones.clone()
    }

    fn compliance(
        &self,
        nodes: &[ObservedNode],
        min_log_retention_days: i32,
        _: Option<&Referenced>,
    ) -> Vec<ComplianceEntry> {
        compliance::evaluate_network(
            nodes,
            &compliance::Context {
                min_log_retention_days,
                allowed_ssh_cidrs: self.spec.bastion.allowed_cidrs.clone(),
                vpc_cidr: self.spec.cidr_block.clone(),
                ..compliance::Context::default()
            },
        )
    }

    fn status_after(&self, common: CommonStatus, outcome: &Outcome) -> HipaaNetworkStatus {
        let find = |node: &str| common.resources.iter().find(|r| r.node == node);
        let id = |node: &str| find(node).and_then(|r| r.id.clone());
        let ids_under = |prefix: &str| -> Vec<String> {
            common
                .resources
                .iter()
                .filter(|r| r.node.starts_with(prefix))
                .filter_map(|r: &ManagedResource| r.id.clone())
                .collect()
        };
        let observed = |node: &str| {
            outcome
                .nodes
                .iter()
                .find(|(key, _)| key == node)
                .and_then(|(_, s)| s.observed.as_ref())
        };
        let bastion_ip =
            observed("instance/bastion").and_then(|o| o.attributes.get("publicIp").cloned());
        let vpc_cidr = observed("vpc").and_then(|o| match &o.spec {
            crate::cloud::Spec::Vpc(crate::cloud::VpcSpec { cidr_block, .. }) => {
                Some(cidr_block.clone())
            }
            _ => None,
        });
        HipaaNetworkStatus {
            vpc_id: id("vpc"),
            vpc_cidr_block: vpc_cidr,
            public_subnet_ids: ids_under("subnet/public/"),
            private_subnet_ids: ids_under("subnet/private/"),
            internet_gateway_id: id("igw"),
            nat_gateway_ids: ids_under("nat/"),
            bastion_instance_id: id("instance/bastion"),
            bastion_public_ip: bastion_ip,
            bastion_security_group_id: id("sg/bastion"),
            flow_log_id: id("flow-log"),
            flow_log_group: id("logs/flow-logs"),
            kms_key_arn: self
                .spec
                .common
                .kms_key_arn
                .clone()
                .or_else(|| find("kms/key").and_then(|r| r.arn.clone())),
            common,
        }
    }
}
