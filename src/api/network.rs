//! `HipaaNetwork`: the VPC and everything in it that is not an application —
//! subnets per AZ, internet and NAT gateways, route tables, the bastion host and
//! VPC flow logs (seed items 7-12, 15, 16).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{CommonSpec, CommonStatus};

/// A VPC laid out for regulated workloads: a public and a private subnet in each
/// availability zone, egress from private subnets only through NAT, a bastion reachable
/// by SSH only from declared CIDRs, and flow logs of all traffic to an encrypted log group.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "hipaa.dev",
    version = "v1alpha1",
    kind = "HipaaNetwork",
    namespaced,
    status = "HipaaNetworkStatus",
    shortname = "hnet",
    category = "hipaa",
    derive = "PartialEq",
    doc = "A HIPAA-aligned AWS VPC: subnets per AZ, NAT egress, bastion host and flow logs.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Synced",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Synced")].status"#
    ),
    printcolumn(
        name = "Drifted",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Drifted")].status"#
    ),
    printcolumn(
        name = "VPC",
        type_ = "string",
        json_path = ".status.vpcId",
        description = "VPC id"
    ),
    printcolumn(
        name = "Compliant",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Compliant")].status"#,
        priority = 1
    ),
    printcolumn(
        name = "Region",
        type_ = "string",
        json_path = ".spec.region",
        priority = 1
    ),
    printcolumn(
        name = "CIDR",
        type_ = "string",
        json_path = ".spec.cidrBlock",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.availabilityZones.all(z, z.startsWith(self.region))")
    .message("every availability zone must be in spec.region (e.g. us-east-1a for us-east-1)")
    .field_path(".availabilityZones"))]
pub struct HipaaNetworkSpec {
    #[serde(flatten)]
    pub common: CommonSpec,

    /// IPv4 CIDR of the VPC, a network address with a prefix from /16 to /24, e.g.
    /// `10.20.0.0/16`. Immutable: AWS cannot change a VPC's primary CIDR.
    #[schemars(length(max = 18))]
    #[x_kube(
        validation = Rule::new("isCIDR(self) && cidr(self).ip().family() == 4")
            .message("must be an IPv4 CIDR such as 10.0.0.0/16"),
        validation = Rule::new("!isCIDR(self) || (cidr(self).prefixLength() >= 16 && cidr(self).prefixLength() <= 24)")
            .message("prefix length must be between /16 and /24 (the sizes AWS allows for a VPC)"),
        validation = Rule::new("!isCIDR(self) || string(cidr(self).masked()) == self")
            .message("must be a network address (e.g. 10.0.0.0/16, not 10.0.0.1/16)"),
        validation = Rule::new("self == oldSelf").message("cidrBlock is immutable"),
    )]
    pub cidr_block: String,

    /// Availability zones to spread the subnets over, e.g. `[us-east-1a, us-east-1b]`; at
    /// least 2 so that NAT, the NLB and Multi-AZ RDS survive the loss of one zone.
    #[schemars(
        length(min = 2, max = 6),
        inner(
            regex(pattern = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}[a-z]$"),
            length(max = 32)
        )
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub availability_zones: Vec<String>,

    /// Sizes of the subnets carved from the VPC CIDR, one public and one private per zone.
    #[serde(default)]
    pub subnets: SubnetLayout,

    /// `PerAz` (default): one NAT gateway in each zone, so losing a zone does not cut the
    /// others' egress. `Single`: one NAT gateway for all zones (cheaper, not zone-redundant).
    #[serde(default)]
    pub nat_gateways: NatGatewayMode,

    /// The bastion host in a public subnet, the only way in for maintenance (SSH tunnel to
    /// the application instances and the database).
    pub bastion: BastionSpec,
}

/// Prefix lengths of the subnets carved from the VPC CIDR.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubnetLayout {
    /// Prefix length of each public subnet (bastion, NAT gateways). Default 24 (256 addresses).
    #[serde(default = "default_public_prefix")]
    #[schemars(range(min = 16, max = 28))]
    pub public_prefix_length: i32,

    /// Prefix length of each private subnet (application instances, database, functions).
    /// Default 20 (4096 addresses).
    #[serde(default = "default_private_prefix")]
    #[schemars(range(min = 16, max = 28))]
    pub private_prefix_length: i32,
}

fn default_public_prefix() -> i32 {
    24
}

fn default_private_prefix() -> i32 {
    20
}

impl Default for SubnetLayout {
    fn default() -> Self {
        Self {
            public_prefix_length: default_public_prefix(),
            private_prefix_length: default_private_prefix(),
        }
    }
}

/// How many NAT gateways serve the private subnets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum NatGatewayMode {
    /// One NAT gateway (and Elastic IP) per availability zone.
    #[default]
    PerAz,
    /// One NAT gateway shared by all zones.
    Single,
}

/// The bastion host: an EC2 instance in a public subnet, IMDSv2 required, root volume
/// encrypted with the stack's KMS key, SSH (22) allowed only from `allowedCidrs`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BastionSpec {
    /// CIDRs allowed to reach the bastion on port 22, e.g. your office or VPN egress
    /// `203.0.113.0/24`. At least one; never `0.0.0.0/0` or `::/0`.
    #[schemars(length(min = 1, max = 20), inner(length(max = 43)))]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new("self.all(c, isCIDR(c))")
            .message("every entry must be a CIDR such as 203.0.113.0/24"),
        validation = Rule::new("self.all(c, !isCIDR(c) || cidr(c).prefixLength() > 0)")
            .message("must not contain 0.0.0.0/0 or ::/0: SSH is never open to the internet (HIPAA control NET-4)"),
    )]
    pub allowed_cidrs: Vec<String>,

    /// EC2 instance type. Default `t3.micro`.
    #[serde(default = "default_bastion_instance_type")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"), length(max = 32))]
    pub instance_type: String,

    /// AMI to boot. When absent the operator uses the region's latest Amazon Linux 2023
    /// image (from the public SSM parameter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^ami-[0-9a-f]{8,17}$"))]
    pub image_id: Option<String>,

    /// Name of an EC2 key pair for SSH. When absent, connect through SSM Session Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub key_name: Option<String>,

    /// Size of the encrypted root volume in GiB, 8 to 100. Default 8.
    #[serde(default = "default_bastion_volume")]
    #[schemars(range(min = 8, max = 100))]
    pub root_volume_gib: i32,
}

fn default_bastion_instance_type() -> String {
    "t3.micro".to_string()
}

fn default_bastion_volume() -> i32 {
    8
}

/// What the operator observed and manages for a `HipaaNetwork`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HipaaNetworkStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The VPC id, e.g. `vpc-0a1b2c3d4e5f60718`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// The VPC's IPv4 CIDR block, as AWS reports it (referrers admit traffic from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_cidr_block: Option<String>,
    /// Public subnet ids, in `spec.availabilityZones` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_subnet_ids: Vec<String>,
    /// Private subnet ids, in `spec.availabilityZones` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_subnet_ids: Vec<String>,
    /// Internet gateway id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internet_gateway_id: Option<String>,
    /// NAT gateway ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nat_gateway_ids: Vec<String>,
    /// Bastion instance id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion_instance_id: Option<String>,
    /// Bastion public IP address (the SSH endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion_public_ip: Option<String>,
    /// Bastion security group id; backends allow database access from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion_security_group_id: Option<String>,
    /// VPC flow log id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_log_id: Option<String>,
    /// CloudWatch log group receiving the flow logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_log_group: Option<String>,
    /// ARN of the KMS key encrypting this stack's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}
