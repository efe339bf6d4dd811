//! `HipaaNetwork` -> the VPC's desired resources: a public and a private subnet per
//! zone carved from the VPC CIDR, an internet gateway, NAT gateways (one per zone or a
//! single one) with Elastic IPs, a public route table and one private route table per
//! zone (egress only through NAT), the default security group emptied, the bastion with
//! its security group (SSH only from the declared CIDRs), and VPC flow logs of ALL
//! traffic to a KMS-encrypted log group through a least-privilege IAM role.

use std::net::Ipv4Addr;

use super::{BlueprintError, Graph, Node, reference};
use crate::api::{HipaaNetworkSpec, NatGatewayMode};
use crate::cloud::{
    DefaultSecurityGroupSpec, ElasticIpSpec, FlowLogSpec, IamRoleSpec, InstanceSpec,
    InternetGatewaySpec, KmsKeySpec, LogGroupSpec, NatGatewaySpec, Owner, PolicyStatement, Route,
    RouteTableSpec, STREAMS_ARN, SecurityGroupSpec, SgRule, Spec, SubnetSpec, VpcSpec,
};

/// The AMI when the spec names none: EC2 resolves this public SSM parameter at launch.
pub const DEFAULT_IMAGE: &str =
    "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64";

/// Actions the flow-log role may perform on its log group's streams.
pub const FLOW_LOG_ACTIONS: [&str; 3] = [
    "logs:CreateLogStream",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
];

/// A name AWS accepts for per-stack resources (IAM roles: 64 characters), unique per
/// owner: long owners are cut and suffixed with a hash of the full name.
pub fn resource_name(owner: &Owner, suffix: &str, max: usize) -> String {
    let full = format!("hipaa-{}-{}-{suffix}", owner.namespace, owner.name);
    if full.len() <= max {
        return full;
    }
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let tail = format!("-{:08x}-{suffix}", hash as u32);
    let head: String = full.chars().take(max.saturating_sub(tail.len())).collect();
    format!("{head}{tail}")
}

fn parse_cidr(cidr: &str, field: &str) -> Result<(u32, u8), BlueprintError> {
    let bad = || BlueprintError {
        field: field.into(),
        message: format!("{cidr:?} is not an IPv4 CIDR"),
    };
    let (ip, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    Ok((u32::from(ip), prefix))
}

fn format_cidr(network: u32, prefix: u8) -> String {
    format!("{}/{prefix}", Ipv4Addr::from(network))
}

/// Carves `counts` subnets of the given prefix lengths out of `vpc`, largest first, each
/// aligned to its size. Returns the CIDRs in request order.
fn carve(vpc: (u32, u8), requests: &[(u8, &str)]) -> Result<Vec<String>, BlueprintError> {
    let (base, vpc_prefix) = vpc;
    let vpc_size: u64 = 1u64 << (32 - vpc_prefix);
    let end = u64::from(base) + vpc_size;
    for (prefix, field) in requests {
        if *prefix <= vpc_prefix {
            return Err(BlueprintError {
                field: (*field).into(),
                message: format!(
                    "a /{prefix} subnet does not fit in the /{vpc_prefix} VPC: it must be smaller than the VPC"
                ),
            });
        }
    }
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| requests[i].0);
    let mut cursor = u64::from(base);
    let mut out = vec![String::new(); requests.len()];
    for i in order {
        let size = 1u64 << (32 - requests[i].0);
        cursor = cursor.div_ceil(size) * size;
        if cursor + size > end {
            let needed: u64 = requests.iter().map(|(p, _)| 1u64 << (32 - p)).sum();
            return Err(BlueprintError {
                field: requests[i].1.into(),
                message: format!(
                    "the subnets do not fit: {} subnets need {needed} addresses, the /{vpc_prefix} VPC has {vpc_size}",
                    requests.len()
                ),
            });
        }
        out[i] = format_cidr(cursor as u32, requests[i].0);
        cursor += size;
    }
    Ok(out)
}

fn ingress(protocol: &str, from: i32, to: i32, source: &str) -> SgRule {
    SgRule {
        protocol: protocol.into(),
        from_port: from,
        to_port: to,
        source: source.into(),
    }
}

/// The desired graph of a `HipaaNetwork`.
pub fn build(owner: &Owner, spec: &HipaaNetworkSpec) -> Result<Graph, BlueprintError> {
    let vpc_cidr = parse_cidr(&spec.cidr_block, "spec.cidrBlock")?;
    let zones = &spec.availability_zones;
    let private_prefix = u8::try_from(spec.subnets.private_prefix_length).unwrap_or(0);
    let public_prefix = u8::try_from(spec.subnets.public_prefix_length).unwrap_or(0);
    let mut requests: Vec<(u8, &str)> = Vec::new();
    requests.extend(
        zones
            .iter()
            .map(|_| (private_prefix, "spec.subnets.privatePrefixLength")),
    );
    requests.extend(
        zones
            .iter()
            .map(|_| (public_prefix, "spec.subnets.publicPrefixLength")),
    );
    let cidrs = carve(vpc_cidr, &requests)?;
    let (private_cidrs, public_cidrs) = cidrs.split_at(zones.len());

    let mut nodes = Vec::new();
    let kms_arn = match &spec.common.kms_key_arn {
        Some(arn) => arn.clone(),
        None => {
            nodes.push(Node {
                key: "kms/key".into(),
                spec: Spec::KmsKey(KmsKeySpec {
                    description: format!("hipaa-operator {owner}"),
                    rotation_enabled: true,
                    // The flow logs' log group is encrypted with it.
                    service_principals: vec![format!("logs.{}.amazonaws.com", spec.common.region)],
                    pending_deletion: false,
                }),
                after: Default::default(),
            });
            reference("kms/key", "arn")
        }
    };
    nodes.push(Node {
        key: "logs/flow-logs".into(),
        spec: Spec::LogGroup(LogGroupSpec {
            name: format!(
                "/hipaa-operator/{}/{}/vpc-flow-logs",
                owner.namespace, owner.name
            ),
            retention_days: spec.common.log_retention_days,
            kms_key_arn: kms_arn.clone(),
        }),
        after: Default::default(),
    });
    nodes.push(Node {
        key: "iam/flow-logs-role".into(),
        spec: Spec::IamRole(IamRoleSpec {
            name: resource_name(owner, "flow-logs", 64),
            trusted_service: "vpc-flow-logs.amazonaws.com".into(),
            // Only its own log group's streams.
            statements: vec![PolicyStatement::new(
                &FLOW_LOG_ACTIONS,
                &[reference("logs/flow-logs", STREAMS_ARN)],
            )],
        }),
        after: Default::default(),
    });
    nodes.push(Node {
        key: "vpc".into(),
        spec: Spec::Vpc(VpcSpec {
            cidr_block: spec.cidr_block.clone(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
        }),
        after: Default::default(),
    });
    let vpc = reference("vpc", "id");
    nodes.push(Node {
        key: "vpc/default-sg".into(),
        spec: Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
            vpc_id: vpc.clone(),
            ingress: vec![],
            egress: vec![],
        }),
        after: Default::default(),
    });
    nodes.push(Node {
        key: "flow-log".into(),
        spec: Spec::FlowLog(FlowLogSpec {
            vpc_id: vpc.clone(),
            log_group_name: reference("logs/flow-logs", "id"),
            role_arn: reference("iam/flow-logs-role", "arn"),
            traffic_type: "ALL".into(),
        }),
        after: Default::default(),
    });
    nodes.push(Node {
        key: "igw".into(),
        spec: Spec::InternetGateway(InternetGatewaySpec {
            vpc_id: vpc.clone(),
        }),
        after: Default::default(),
    });

    for (i, zone) in zones.iter().enumerate() {
        for (tier, cidr) in [("public", &public_cidrs[i]), ("private", &private_cidrs[i])] {
            nodes.push(Node {
                key: format!("subnet/{tier}/{zone}"),
                spec: Spec::Subnet(SubnetSpec {
                    vpc_id: vpc.clone(),
                    cidr_block: cidr.clone(),
                    availability_zone: zone.clone(),
                    map_public_ip_on_launch: false,
                }),
                after: Default::default(),
            });
        }
    }
    let nat_zones: Vec<&String> = match spec.nat_gateways {
        NatGatewayMode::PerAz => zones.iter().collect(),
        NatGatewayMode::Single => zones.iter().take(1).collect(),
    };
    for zone in &nat_zones {
        nodes.push(Node {
            key: format!("eip/nat/{zone}"),
            spec: Spec::ElasticIp(ElasticIpSpec {}),
            after: Default::default(),
        });
        nodes.push(Node {
            key: format!("nat/{zone}"),
            spec: Spec::NatGateway(NatGatewaySpec {
                subnet_id: reference(&format!("subnet/public/{zone}"), "id"),
                allocation_id: reference(&format!("eip/nat/{zone}"), "id"),
            }),
            // A NAT gateway routes through the VPC's internet gateway.
            after: ["igw".to_string()].into(),
        });
    }
    nodes.push(Node {
        key: "rtb/public".into(),
        spec: Spec::RouteTable(RouteTableSpec {
            vpc_id: vpc.clone(),
            routes: vec![Route {
                destination: "0.0.0.0/0".into(),
                target: reference("igw", "id"),
            }],
            subnet_ids: zones
                .iter()
                .map(|z| reference(&format!("subnet/public/{z}"), "id"))
                .collect(),
        }),
        after: Default::default(),
    });
    for zone in zones {
        let nat_zone = if nat_zones.contains(&zone) {
            zone
        } else {
            nat_zones[0]
        };
        nodes.push(Node {
            key: format!("rtb/private/{zone}"),
            spec: Spec::RouteTable(RouteTableSpec {
                vpc_id: vpc.clone(),
                routes: vec![Route {
                    destination: "0.0.0.0/0".into(),
                    target: reference(&format!("nat/{nat_zone}"), "id"),
                }],
                subnet_ids: vec![reference(&format!("subnet/private/{zone}"), "id")],
            }),
            after: Default::default(),
        });
    }

    let bastion = &spec.bastion;
    let mut bastion_ingress: Vec<SgRule> = bastion
        .allowed_cidrs
        .iter()
        .map(|c| ingress("tcp", 22, 22, c))
        .collect();
    bastion_ingress.sort();
    nodes.push(Node {
        key: "sg/bastion".into(),
        spec: Spec::SecurityGroup(SecurityGroupSpec {
            vpc_id: vpc.clone(),
            name: resource_name(owner, "bastion", 255),
            description: "hipaa-operator bastion: SSH from declared CIDRs only".into(),
            ingress: bastion_ingress,
            egress: vec![
                ingress("tcp", 0, 65535, &spec.cidr_block),
                ingress("tcp", 443, 443, "0.0.0.0/0"),
            ],
        }),
        after: Default::default(),
    });
    nodes.push(Node {
        key: "instance/bastion".into(),
        spec: Spec::Instance(InstanceSpec {
            subnet_id: reference(&format!("subnet/public/{}", zones[0]), "id"),
            security_group_ids: vec![reference("sg/bastion", "id")],
            instance_type: bastion.instance_type.clone(),
            image_id: bastion
                .image_id
                .clone()
                .unwrap_or_else(|| DEFAULT_IMAGE.into()),
            imds_v2_required: true,
            root_volume_gib: bastion.root_volume_gib,
            root_volume_encrypted: true,
            root_volume_kms_key_arn: kms_arn,
            associate_public_ip: true,
            key_name: bastion.key_name.clone().unwrap_or_default(),
        }),
        // Reachable only once the public subnet routes to the internet gateway.
        after: ["rtb/public".to_string()].into(),
    });

    let graph = Graph {
        nodes,
        tags: spec.common.tags.clone(),
        region: spec.common.region.clone(),
    };
    graph.topological_order()?;
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BastionSpec, CommonSpec, DeletionPolicy, DriftPolicy, SubnetLayout};
    use std::time::Duration;

    fn spec(
        cidr: &str,
        zones: &[&str],
        nat: NatGatewayMode,
        layout: (i32, i32),
    ) -> HipaaNetworkSpec {
        HipaaNetworkSpec {
            common: CommonSpec {
                region: "us-east-1".into(),
                tags: Default::default(),
                log_retention_days: 365,
                kms_key_arn: None,
                deletion_policy: DeletionPolicy::Delete,
                drift_policy: DriftPolicy::Remediate,
            },
            cidr_block: cidr.into(),
            availability_zones: zones.iter().map(|z| z.to_string()).collect(),
            subnets: SubnetLayout {
                public_prefix_length: layout.0,
                private_prefix_length: layout.1,
            },
            nat_gateways: nat,
            bastion: BastionSpec {
                allowed_cidrs: vec!["203.0.113.0/24".into()],
                instance_type: "t3.micro".into(),
                image_id: None,
                key_name: None,
                root_volume_gib: 8,
            },
        }
    }

    fn owner() -> Owner {
        Owner {
            kind: "HipaaNetwork".into(),
            namespace: "clinic".into(),
            name: "net".into(),
        }
    }

    fn keys(graph: &Graph) -> Vec<&str> {
        graph.nodes.iter().map(|n| n.key.as_str()).collect()
    }

    #[test]
    fn two_zones_per_az_nat_makes_the_whole_network() {
        let graph = build(
            &owner(),
            &spec(
                "10.20.0.0/16",
                &["us-east-1a", "us-east-1b"],
                NatGatewayMode::PerAz,
                (24, 20),
            ),
        )
        .unwrap();
        let mut k = keys(&graph);
        k.sort();
        assert_eq!(
            k,
            [
                "eip/nat/us-east-1a",
                "eip/nat/us-east-1b",
                "flow-log",
                "iam/flow-logs-role",
                "igw",
                "instance/bastion",
                "kms/key",
                "logs/flow-logs",
                "nat/us-east-1a",
                "nat/us-east-1b",
                "rtb/private/us-east-1a",
                "rtb/private/us-east-1b",
                "rtb/public",
                "sg/bastion",
                "subnet/private/us-east-1a",
                "subnet/private/us-east-1b",
                "subnet/public/us-east-1a",
                "subnet/public/us-east-1b",
                "vpc",
                "vpc/default-sg"
            ]
        );
        let cidr = |key: &str| match &graph.node(key).unwrap().spec {
            Spec::Subnet(SubnetSpec {
                cidr_block,
                map_public_ip_on_launch,
                ..
            }) => {
                assert!(
                    !map_public_ip_on_launch,
                    "{key}: no public IPs by default (NET-3)"
                );
                cidr_block.clone()
            }
            _ => unreachable!(),
        };
        assert_eq!(
            cidr("subnet/private/us-east-1a"),
            "10.20.0.0/20",
            "the large private subnets first"
        );
        assert_eq!(cidr("subnet/private/us-east-1b"), "10.20.16.0/20");
        assert_eq!(cidr("subnet/public/us-east-1a"), "10.20.32.0/24");
        assert_eq!(cidr("subnet/public/us-east-1b"), "10.20.33.0/24");
    }

    #[test]
    fn private_route_tables_egress_only_through_nat() {
        for (mode, expected_nat_b, why) in [
            (
                NatGatewayMode::PerAz,
                "ref:nat/us-east-1b:id",
                "each zone through its own NAT",
            ),
            (
                NatGatewayMode::Single,
                "ref:nat/us-east-1a:id",
                "every zone through the single NAT",
            ),
        ] {
            let graph = build(
                &owner(),
                &spec("10.0.0.0/16", &["us-east-1a", "us-east-1b"], mode, (24, 20)),
            )
            .unwrap();
            match &graph.node("rtb/private/us-east-1b").unwrap().spec {
                Spec::RouteTable(RouteTableSpec { routes, .. }) => {
                    assert_eq!(routes.len(), 1, "{why}");
                    assert_eq!(routes[0].target, expected_nat_b, "{why}");
                    assert!(!routes[0].target.contains("igw"), "never the IGW (NET-2)");
                }
                _ => unreachable!(),
            }
            let nats = graph
                .nodes
                .iter()
                .filter(|n| n.key.starts_with("nat/"))
                .count();
            assert_eq!(
                nats,
                if mode == NatGatewayMode::PerAz { 2 } else { 1 },
                "{why}"
            );
        }
    }

    #[test]
    fn bastion_allows_ssh_only_from_declared_cidrs_and_requires_imdsv2() {
        let graph = build(
            &owner(),
            &spec(
                "10.0.0.0/16",
                &["us-east-1a", "us-east-1b"],
                NatGatewayMode::PerAz,
                (24, 20),
            ),
        )
        .unwrap();
        match &graph.node("sg/bastion").unwrap().spec {
            Spec::SecurityGroup(SecurityGroupSpec { ingress: rules, .. }) => {
                assert_eq!(rules, &[ingress("tcp", 22, 22, "203.0.113.0/24")])
            }
            _ => unreachable!(),
        }
        match &graph.node("instance/bastion").unwrap().spec {
            Spec::Instance(InstanceSpec {
                imds_v2_required,
                root_volume_encrypted,
                root_volume_kms_key_arn,
                ..
            }) => {
                assert!(*imds_v2_required && *root_volume_encrypted);
                assert_eq!(root_volume_kms_key_arn, "ref:kms/key:arn");
            }
            _ => unreachable!(),
        }
        match &graph.node("flow-log").unwrap().spec {
            Spec::FlowLog(FlowLogSpec { traffic_type, .. }) => assert_eq!(traffic_type, "ALL"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn specs_the_schema_cannot_catch_fail_before_anything_is_created() {
        let cases = [
            (
                spec(
                    "10.0.0.0/24",
                    &["us-east-1a", "us-east-1b"],
                    NatGatewayMode::PerAz,
                    (26, 24),
                ),
                "spec.subnets.privatePrefixLength",
                "a /24 private subnet in a /24 VPC",
            ),
            (
                spec(
                    "10.0.0.0/20",
                    &["us-east-1a", "us-east-1b", "us-east-1c"],
                    NatGatewayMode::PerAz,
                    (24, 20),
                ),
                "spec.subnets",
                "three /20 subnets in a /20",
            ),
            (
                spec(
                    "10.0.0.0/22",
                    &["us-east-1a", "us-east-1b", "us-east-1c"],
                    NatGatewayMode::PerAz,
                    (24, 24),
                ),
                "spec.subnets",
                "six /24 in a /22 (room for four)",
            ),
        ];
        for (s, field, why) in cases {
            let err = build(&owner(), &s).unwrap_err();
            assert!(err.field.starts_with(field), "{why}: {err}");
        }
    }

    #[test]
    fn graph_is_acyclic_and_dependencies_follow_references() {
        let graph = build(
            &owner(),
            &spec(
                "10.0.0.0/16",
                &["us-east-1a", "us-east-1b"],
                NatGatewayMode::PerAz,
                (24, 20),
            ),
        )
        .unwrap();
        let order = graph.topological_order().unwrap();
        let position = |k: &str| order.iter().position(|o| o == k).unwrap();
        for (before, after) in [
            ("vpc", "subnet/public/us-east-1a"),
            ("eip/nat/us-east-1a", "nat/us-east-1a"),
            ("igw", "nat/us-east-1a"),
            ("nat/us-east-1b", "rtb/private/us-east-1b"),
            ("kms/key", "logs/flow-logs"),
            ("logs/flow-logs", "flow-log"),
        ] {
            assert!(
                position(before) < position(after),
                "{before} before {after}"
            );
        }
    }

    #[test]
    fn long_owner_names_still_give_valid_role_names() {
        let long = Owner {
            kind: "HipaaNetwork".into(),
            namespace: "n".repeat(60),
            name: "m".repeat(60),
        };
        let name = resource_name(&long, "flow-logs", 64);
        assert!(name.len() <= 64 && name.ends_with("-flow-logs"), "{name}");
        assert_ne!(
            name,
            resource_name(
                &Owner {
                    kind: "HipaaNetwork".into(),
                    namespace: "n".repeat(60),
                    name: "x".repeat(60)
                },
                "flow-logs",
                64
            ),
            "unique per owner"
        );
    }

    #[test]
    fn the_critical_path_runs_through_the_slowest_chain() {
        let graph = build(
            &owner(),
            &spec(
                "10.0.0.0/16",
                &["us-east-1a", "us-east-1b"],
                NatGatewayMode::PerAz,
                (24, 20),
            ),
        )
        .unwrap();
        // A NAT gateway takes 90 s, everything else 1 s: the longest chain is
        // VPC -> public subnet (or internet gateway) -> NAT -> private route table.
        let cost = |key: &str| Duration::from_secs(if key.starts_with("nat/") { 90 } else { 1 });
        let (end, length) = graph.critical_path(cost).unwrap();
        assert!(end.starts_with("rtb/private/"), "{end}");
        assert_eq!(length, Duration::from_secs(93));
        assert_eq!(Graph::default().critical_path(cost), None);
    }
}
