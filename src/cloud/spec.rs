//! What one resource is (desired) or was seen to be (observed): one struct per kind, and
//! [`Spec`], the enum over them that the engine handles without knowing the kind.
//!
//! The JSON shape is `{"kind": "vpc", "cidrBlock": …, …}` (the kind's name in camelCase
//! plus its fields in camelCase): drift, status and plan output name fields by these
//! names, so they are part of the operator's output.

use serde::{Deserialize, Serialize};

use super::Kind;

/// An ingress or egress rule of a security group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SgRule {
    /// `tcp`, `udp`, `icmp` or `-1` (all).
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    /// An IPv4/IPv6 CIDR, or a security group id (`sg-…`).
    pub source: String,
}

impl SgRule {
    /// `tcp` from `from_port` to `to_port` from `source`.
    pub fn tcp(from_port: i32, to_port: i32, source: &str) -> Self {
        SgRule {
            protocol: "tcp".into(),
            from_port,
            to_port,
            source: source.into(),
        }
    }
}

/// A route in a route table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Route {
    pub destination: String,
    /// `igw-…`, `nat-…` (or `local`, which observe omits).
    pub target: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KmsKeySpec {
    pub description: String,
    pub rotation_enabled: bool,
    /// Observed only: the key is scheduled for deletion.
    pub pending_deletion: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroupSpec {
    pub name: String,
    pub retention_days: i32,
    pub kms_key_arn: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamRoleSpec {
    pub name: String,
    /// The service allowed to assume it, e.g. `vpc-flow-logs.amazonaws.com`.
    pub trusted_service: String,
    /// Actions the inline policy allows (least privilege: only these, on `*`).
    pub allowed_actions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcSpec {
    pub cidr_block: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefaultSecurityGroupSpec {
    pub vpc_id: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetSpec {
    pub vpc_id: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub map_public_ip_on_launch: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternetGatewaySpec {
    /// The VPC it is attached to ("" when detached).
    pub vpc_id: String,
}

/// An Elastic IP has nothing to configure (its address is the `publicIp` attribute).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticIpSpec {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NatGatewaySpec {
    pub subnet_id: String,
    pub allocation_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableSpec {
    pub vpc_id: String,
    pub routes: Vec<Route>,
    /// Subnets associated with the table.
    pub subnet_ids: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupSpec {
    pub vpc_id: String,
    pub name: String,
    pub description: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceSpec {
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    pub instance_type: String,
    pub image_id: String,
    /// IMDSv2 only (`HttpTokens=required`).
    pub imds_v2_required: bool,
    pub root_volume_gib: i32,
    pub root_volume_encrypted: bool,
    pub root_volume_kms_key_arn: String,
    pub associate_public_ip: bool,
    pub key_name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowLogSpec {
    pub vpc_id: String,
    pub log_group_name: String,
    pub role_arn: String,
    pub traffic_type: String,
}

/// What one resource is (desired) or was seen to be (observed), of any kind. Ids of other
/// resources are AWS ids (the engine resolves references before handing a spec to a
/// provider).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Spec {
    KmsKey(KmsKeySpec),
    LogGroup(LogGroupSpec),
    IamRole(IamRoleSpec),
    Vpc(VpcSpec),
    DefaultSecurityGroup(DefaultSecurityGroupSpec),
    Subnet(SubnetSpec),
    InternetGateway(InternetGatewaySpec),
    ElasticIp(ElasticIpSpec),
    NatGateway(NatGatewaySpec),
    RouteTable(RouteTableSpec),
    SecurityGroup(SecurityGroupSpec),
    Instance(InstanceSpec),
    FlowLog(FlowLogSpec),
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::KmsKey(_) => Kind::KmsKey,
            Spec::LogGroup(_) => Kind::LogGroup,
            Spec::IamRole(_) => Kind::IamRole,
            Spec::Vpc(_) => Kind::Vpc,
            Spec::DefaultSecurityGroup(_) => Kind::DefaultSecurityGroup,
            Spec::Subnet(_) => Kind::Subnet,
            Spec::InternetGateway(_) => Kind::InternetGateway,
            Spec::ElasticIp(_) => Kind::ElasticIp,
            Spec::NatGateway(_) => Kind::NatGateway,
            Spec::RouteTable(_) => Kind::RouteTable,
            Spec::SecurityGroup(_) => Kind::SecurityGroup,
            Spec::Instance(_) => Kind::Instance,
            Spec::FlowLog(_) => Kind::FlowLog,
        }
    }

    /// The spec's fields as `(name, value as text)`, by name; lists sorted so that order
    /// never counts as drift. Drift is computed on these.
    pub fn fields(&self) -> Vec<(String, String)> {
        let value = serde_json::to_value(self).unwrap_or_default();
        let mut out = Vec::new();
        if let Some(map) = value.as_object() {
            for (key, field) in map {
                if key != "kind" {
                    out.push((key.clone(), field_text(field)));
                }
            }
        }
        out
    }
}

fn field_text(field: &serde_json::Value) -> String {
    match field {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => {
            let mut rendered: Vec<String> = items.iter().map(render).collect();
            rendered.sort();
            format!("[{}]", rendered.join(", "))
        }
        other => render(other),
    }
}

fn render(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", render(v)))
                .collect();
            parts.join(" ")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_the_kind_in_camel_case_and_the_fields_flat() {
        let cases = [
            (
                Spec::Vpc(VpcSpec {
                    cidr_block: "10.0.0.0/16".into(),
                    enable_dns_support: true,
                    enable_dns_hostnames: false,
                }),
                serde_json::json!({"kind": "vpc", "cidrBlock": "10.0.0.0/16", "enableDnsSupport": true, "enableDnsHostnames": false}),
            ),
            (
                Spec::ElasticIp(ElasticIpSpec {}),
                serde_json::json!({"kind": "elasticIp"}),
            ),
            (
                Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
                    vpc_id: "vpc-1".into(),
                    ingress: vec![SgRule::tcp(22, 22, "10.0.0.0/8")],
                    egress: vec![],
                }),
                serde_json::json!({"kind": "defaultSecurityGroup", "vpcId": "vpc-1", "ingress": [{"protocol": "tcp", "from_port": 22, "to_port": 22, "source": "10.0.0.0/8"}], "egress": []}),
            ),
        ];
        for (spec, json) in cases {
            assert_eq!(serde_json::to_value(&spec).unwrap(), json);
            assert_eq!(serde_json::from_value::<Spec>(json).unwrap(), spec);
        }
    }
}
