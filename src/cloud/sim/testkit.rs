//! Test fixtures: a fast simulation, specs for every kind, a small network.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{SimCloud, SimConfig};
use crate::cloud::{
    CloudError, Desired, ElasticIpSpec, FlowLogSpec, IamRoleSpec, InstanceSpec,
    InternetGatewaySpec, Kind, KmsKeySpec, LogGroupSpec, Lookup, NatGatewaySpec, Observed, Owner,
    Provider, Route, RouteTableSpec, SecurityGroupSpec, SgRule, Spec, SubnetSpec, VpcSpec,
    ownership_tags,
};

pub(crate) fn sim() -> SimCloud {
    SimCloud::new(SimConfig::fast())
}

/// A simulation at `time_scale`: tests that watch a timed state use a slower clock than
/// [`sim`] so that a busy machine cannot skip the state between two calls.
pub(crate) fn sim_at(time_scale: f64) -> SimCloud {
    SimCloud::new(SimConfig {
        time_scale,
        ..SimConfig::fast()
    })
}

pub(crate) fn owner() -> Owner {
    Owner {
        kind: "HipaaNetwork".into(),
        namespace: "clinic".into(),
        name: "prod".into(),
    }
}

/// `spec` as node `node` of [`owner`], token `tok-<node>`.
pub(crate) fn desired(node: &str, spec: Spec) -> Desired {
    let user = BTreeMap::from([("team".to_string(), "platform".to_string())]);
    Desired {
        node: node.into(),
        spec,
        tags: ownership_tags(&owner(), node, &user),
        client_token: format!("tok-{node}"),
    }
}

pub(crate) async fn make(sim: &SimCloud, node: &str, spec: Spec) -> Observed {
    sim.create(&desired(node, spec))
        .await
        .unwrap_or_else(|e| panic!("create {node}: {e}"))
}

/// Calls of `operation`, any service and outcome.
pub(crate) fn count(sim: &SimCloud, operation: &str) -> u64 {
    sim.calls()
        .iter()
        .filter(|((_, op, _), _)| op == operation)
        .map(|(_, n)| n)
        .sum()
}

/// Every call made since the last reset, one entry per call, in (service, operation) order.
pub(crate) fn ops(sim: &SimCloud) -> Vec<String> {
    sim.calls()
        .iter()
        .flat_map(|((_, op, _), n)| std::iter::repeat_n(op.clone(), *n as usize))
        .collect()
}

/// The AWS error code: a terminal error's code, else its category.
pub(crate) fn code(err: &CloudError) -> String {
    match err {
        CloudError::Terminal { code, .. } => code.clone(),
        other => other.category().to_string(),
    }
}

pub(crate) async fn observe_id(sim: &SimCloud, kind: Kind, id: &str) -> Option<Observed> {
    let lookup = Lookup {
        node: "-".into(),
        recorded_id: Some(id.into()),
        desired: None,
    };
    sim.observe(kind, &owner(), &[lookup])
        .await
        .unwrap()
        .pop()
        .flatten()
}

/// Waits (up to 5 s) until the resource no longer exists.
pub(crate) async fn wait_gone(sim: &SimCloud, id: &str) {
    let start = Instant::now();
    while sim.resources().iter().any(|(_, o)| o.id == id) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{id} never went away"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) fn vpc_spec() -> Spec {
    Spec::Vpc(VpcSpec {
        cidr_block: "10.0.0.0/16".into(),
        enable_dns_support: true,
        enable_dns_hostnames: false,
    })
}

pub(crate) fn subnet_spec(vpc: &str, cidr: &str, zone: &str) -> Spec {
    Spec::Subnet(SubnetSpec {
        vpc_id: vpc.into(),
        cidr_block: cidr.into(),
        availability_zone: zone.into(),
        map_public_ip_on_launch: false,
    })
}

pub(crate) fn tcp(port: i32, source: &str) -> SgRule {
    SgRule {
        protocol: "tcp".into(),
        from_port: port,
        to_port: port,
        source: source.into(),
    }
}

pub(crate) fn sg_spec(vpc: &str, name: &str, ingress: Vec<SgRule>, egress: Vec<SgRule>) -> Spec {
    Spec::SecurityGroup(SecurityGroupSpec {
        vpc_id: vpc.into(),
        name: name.into(),
        description: format!("{name} tier"),
        ingress,
        egress,
    })
}

pub(crate) fn nat_spec(subnet: &str, eip: &str) -> Spec {
    Spec::NatGateway(NatGatewaySpec {
        subnet_id: subnet.into(),
        allocation_id: eip.into(),
    })
}

pub(crate) fn route(destination: &str, target: &str) -> Route {
    Route {
        destination: destination.into(),
        target: target.into(),
    }
}

pub(crate) fn table_spec(vpc: &str, routes: Vec<Route>, subnets: &[&str]) -> Spec {
    Spec::RouteTable(RouteTableSpec {
        vpc_id: vpc.into(),
        routes,
        subnet_ids: subnets.iter().map(|s| s.to_string()).collect(),
    })
}

/// `sg` empty: no group given (AWS then uses the VPC's default group).
pub(crate) fn instance_spec(subnet: &str, sg: &str, public: bool) -> Spec {
    Spec::Instance(InstanceSpec {
        subnet_id: subnet.into(),
        security_group_ids: if sg.is_empty() {
            vec![]
        } else {
            vec![sg.into()]
        },
        instance_type: "t3.micro".into(),
        image_id: "ami-0abcdef1234567890".into(),
        imds_v2_required: true,
        root_volume_gib: 20,
        root_volume_encrypted: true,
        root_volume_kms_key_arn: String::new(),
        associate_public_ip: public,
        key_name: String::new(),
    })
}

pub(crate) fn flow_spec(vpc: &str) -> Spec {
    Spec::FlowLog(FlowLogSpec {
        vpc_id: vpc.into(),
        log_group_name: "/hipaa/flow".into(),
        role_arn: "arn:aws:iam::123456789012:role/flow-logs".into(),
        traffic_type: "ALL".into(),
    })
}

pub(crate) fn key_spec(rotation: bool) -> Spec {
    Spec::KmsKey(KmsKeySpec {
        description: "hipaa data".into(),
        rotation_enabled: rotation,
        service_principals: vec!["logs.us-east-1.amazonaws.com".into()],
        pending_deletion: false,
    })
}

pub(crate) fn log_spec(name: &str, days: i32, key: &str) -> Spec {
    Spec::LogGroup(LogGroupSpec {
        name: name.into(),
        retention_days: days,
        kms_key_arn: key.into(),
    })
}

pub(crate) fn role_spec(name: &str, actions: &[&str]) -> Spec {
    Spec::IamRole(IamRoleSpec {
        name: name.into(),
        trusted_service: "vpc-flow-logs.amazonaws.com".into(),
        statements: crate::cloud::normalized_statements(&[crate::cloud::PolicyStatement::new(
            actions,
            &[format!(
                "arn:aws:logs:us-east-1:123456789012:log-group:/{name}:*"
            )],
        )]),
    })
}

/// A VPC with an attached internet gateway, a public and a private subnet, an EIP and a
/// security group.
pub(crate) struct Net {
    pub vpc: String,
    pub igw: String,
    pub public: String,
    pub private: String,
    pub eip: String,
    pub eip_ip: Option<String>,
    pub sg: String,
}

pub(crate) async fn network(sim: &SimCloud) -> Net {
    let vpc = make(sim, "vpc", vpc_spec()).await.id;
    let igw = make(
        sim,
        "igw",
        Spec::InternetGateway(InternetGatewaySpec {
            vpc_id: vpc.clone(),
        }),
    )
    .await
    .id;
    let public = make(
        sim,
        "public",
        subnet_spec(&vpc, "10.0.0.0/24", "us-east-1a"),
    )
    .await
    .id;
    let private = make(
        sim,
        "private",
        subnet_spec(&vpc, "10.0.1.0/24", "us-east-1b"),
    )
    .await
    .id;
    let eip = make(sim, "eip", Spec::ElasticIp(ElasticIpSpec {})).await;
    let sg = make(sim, "sg", sg_spec(&vpc, "app", vec![], vec![]))
        .await
        .id;
    Net {
        vpc,
        igw,
        public,
        private,
        eip: eip.id,
        eip_ip: eip.attributes.get("publicIp").cloned(),
        sg,
    }
}
