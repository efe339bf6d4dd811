use std::collections::BTreeMap;

use super::*;
use crate::api::{ComplianceEntry, ControlResult};
use crate::cloud::{
    DefaultSecurityGroupSpec, FlowLogSpec, InstanceSpec, InternetGatewaySpec, KmsKeySpec,
    LogGroupSpec, Route, RouteTableSpec, SecurityGroupSpec, SgRule, Spec, State, SubnetSpec,
    VpcSpec,
};

use ControlResult::{Failed, Passed, Unknown};

const VPC_ID: &str = "vpc-0a1";
const FLOW_GROUP: &str = "/hipaa/demo/vpc-flow";
const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/k-1";
const ADMIN_CIDR: &str = "203.0.113.0/24";

fn obs(id: &str, spec: Spec) -> Observed {
    Observed {
        id: id.into(),
        arn: None,
        state: State::Available,
        spec,
        tags: BTreeMap::new(),
        attributes: BTreeMap::new(),
    }
}

fn node(key: &str, id: &str, spec: Spec) -> ObservedNode {
    ObservedNode {
        node: key.into(),
        kind: spec.kind(),
        observed: Ok(Some(obs(id, spec))),
    }
}

fn rule(protocol: &str, from: i32, to: i32, source: &str) -> SgRule {
    SgRule {
        protocol: protocol.into(),
        from_port: from,
        to_port: to,
        source: source.into(),
    }
}

fn sg(ingress: Vec<SgRule>) -> Spec {
    Spec::SecurityGroup(SecurityGroupSpec {
        vpc_id: VPC_ID.into(),
        name: "sg".into(),
        description: "sg".into(),
        ingress,
        egress: vec![rule("-1", 0, 0, "0.0.0.0/0")],
    })
}

fn instance(public: bool) -> Spec {
    Spec::Instance(InstanceSpec {
        subnet_id: "subnet-pub".into(),
        security_group_ids: vec!["sg-0bastion".into()],
        instance_type: "t3.micro".into(),
        image_id: "ami-1".into(),
        imds_v2_required: true,
        root_volume_gib: 8,
        root_volume_encrypted: true,
        root_volume_kms_key_arn: KEY_ARN.into(),
        associate_public_ip: public,
        key_name: String::new(),
    })
}

fn log_group(name: &str) -> Spec {
    Spec::LogGroup(LogGroupSpec {
        name: name.into(),
        retention_days: 365,
        kms_key_arn: KEY_ARN.into(),
    })
}

fn flow_log(traffic: &str) -> Spec {
    Spec::FlowLog(FlowLogSpec {
        vpc_id: VPC_ID.into(),
        log_group_name: FLOW_GROUP.into(),
        role_arn: "arn:aws:iam::111122223333:role/flow".into(),
        traffic_type: traffic.into(),
    })
}

/// The network stack as the operator builds it: every row passes.
fn compliant() -> Vec<ObservedNode> {
    vec![
        node(
            "kms/logs",
            "k-1",
            Spec::KmsKey(KmsKeySpec {
                description: "logs".into(),
                rotation_enabled: true,
                service_principals: vec![],
                pending_deletion: false,
            }),
        ),
        node("logs/flow", "lg-flow", log_group(FLOW_GROUP)),
        node(
            "vpc",
            VPC_ID,
            Spec::Vpc(VpcSpec {
                cidr_block: "10.0.0.0/16".into(),
                enable_dns_support: true,
                enable_dns_hostnames: true,
            }),
        ),
        node(
            "vpc/default-sg",
            "sg-0default",
            Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
                vpc_id: VPC_ID.into(),
                ingress: vec![],
                egress: vec![],
            }),
        ),
        node(
            "subnet/public-a",
            "subnet-pub",
            Spec::Subnet(SubnetSpec {
                vpc_id: VPC_ID.into(),
                cidr_block: "10.0.0.0/24".into(),
                availability_zone: "us-east-1a".into(),
                map_public_ip_on_launch: true,
            }),
        ),
        node(
            "subnet/private-a",
            "subnet-priv",
            Spec::Subnet(SubnetSpec {
                vpc_id: VPC_ID.into(),
                cidr_block: "10.0.10.0/24".into(),
                availability_zone: "us-east-1a".into(),
                map_public_ip_on_launch: false,
            }),
        ),
        node(
            "igw",
            "igw-0a1",
            Spec::InternetGateway(InternetGatewaySpec {
                vpc_id: VPC_ID.into(),
            }),
        ),
        node(
            "rt/public",
            "rtb-pub",
            Spec::RouteTable(RouteTableSpec {
                vpc_id: VPC_ID.into(),
                routes: vec![Route {
                    destination: "0.0.0.0/0".into(),
                    target: "igw-0a1".into(),
                }],
                subnet_ids: vec!["subnet-pub".into()],
            }),
        ),
        node(
            "rt/private-a",
            "rtb-priv",
            Spec::RouteTable(RouteTableSpec {
                vpc_id: VPC_ID.into(),
                routes: vec![Route {
                    destination: "0.0.0.0/0".into(),
                    target: "nat-0a1".into(),
                }],
                subnet_ids: vec!["subnet-priv".into()],
            }),
        ),
        node(
            "sg/bastion",
            "sg-0bastion",
            sg(vec![rule("tcp", 22, 22, ADMIN_CIDR)]),
        ),
        node("instance/bastion", "i-0bastion", instance(true)),
        node("flowlog/vpc", "fl-0a1", flow_log("ALL")),
    ]
}

fn ctx() -> Context {
    Context {
        allowed_ssh_cidrs: vec![ADMIN_CIDR.into()],
        vpc_cidr: "10.0.0.0/16".into(),
        ..Context::default()
    }
}

fn spec_mut<'a>(nodes: &'a mut [ObservedNode], key: &str) -> &'a mut Spec {
    let n = nodes
        .iter_mut()
        .find(|n| n.node == key)
        .unwrap_or_else(|| panic!("no node {key}"));
    &mut n
        .observed
        .as_mut()
        .expect("observed")
        .as_mut()
        .expect("exists")
        .spec
}

fn set_observed(nodes: &mut [ObservedNode], key: &str, observed: Result<Option<Observed>, String>) {
    nodes
        .iter_mut()
        .find(|n| n.node == key)
        .expect("node")
        .observed = observed;
}

fn entry<'a>(entries: &'a [ComplianceEntry], id: &str) -> &'a ComplianceEntry {
    entries
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no row {id} in {entries:?}"))
}

fn ids(entries: &[ComplianceEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.id.as_str()).collect()
}

const NETWORK_IDS: [&str; 10] = [
    "NET-1", "NET-2", "NET-3", "NET-4", "NET-5", "NET-6", "EC2-1", "EC2-2", "KMS-1", "LOG-1",
];

#[test]
fn compliant_network_passes_every_row_in_table_order() {
    let entries = evaluate_network(&compliant(), &ctx());
    assert_eq!(
        ids(&entries),
        NETWORK_IDS,
        "EC2-3 is omitted without application instances"
    );
    for e in &entries {
        assert_eq!(e.result, Passed, "{e:?}");
        assert!(!e.detail.is_empty(), "a pass says what was checked: {e:?}");
        assert_eq!(e.citation, citation(&e.id));
        assert!(e.citation.starts_with("45 CFR 164."), "{e:?}");
    }
    assert!(
        entry(&entries, "NET-1")
            .detail
            .contains("flowlog/vpc (fl-0a1)")
    );
}

type Mutation = fn(&mut Vec<ObservedNode>);

/// One violation: what it proves, how to break the compliant stack, the row that must fail
/// and strings its detail must contain (node key, AWS id, offending value).
struct Case {
    proves: &'static str,
    mutate: Mutation,
    row: &'static str,
    detail: &'static [&'static str],
}

fn set_bastion_ingress(nodes: &mut [ObservedNode], rules: Vec<SgRule>) {
    if let Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) = spec_mut(nodes, "sg/bastion") {
        *ingress = rules;
    }
}

fn add_sg(nodes: &mut Vec<ObservedNode>, key: &str, id: &str, rules: Vec<SgRule>) {
    nodes.push(node(key, id, sg(rules)));
}

const CASES: &[Case] = &[
    Case {
        proves: "SSH from 0.0.0.0/0 fails NET-4",
        mutate: |n| {
            add_sg(
                n,
                "sg/extra",
                "sg-0open",
                vec![rule("tcp", 22, 22, "0.0.0.0/0")],
            )
        },
        row: "NET-4",
        detail: &["sg/extra (sg-0open): ingress tcp 22 from 0.0.0.0/0"],
    },
    Case {
        proves: "RDP from ::/0 fails NET-4",
        mutate: |n| {
            add_sg(
                n,
                "sg/extra",
                "sg-0rdp",
                vec![rule("tcp", 3389, 3389, "::/0")],
            )
        },
        row: "NET-4",
        detail: &["sg/extra (sg-0rdp): ingress tcp 3389 from ::/0"],
    },
    Case {
        proves: "a port range covering 22 from the internet fails NET-4",
        mutate: |n| {
            add_sg(
                n,
                "sg/extra",
                "sg-0range",
                vec![rule("tcp", 0, 1024, "0.0.0.0/0")],
            )
        },
        row: "NET-4",
        detail: &["sg/extra (sg-0range): ingress tcp 0-1024 from 0.0.0.0/0"],
    },
    Case {
        proves: "all traffic (-1) from the internet fails NET-4",
        mutate: |n| {
            add_sg(
                n,
                "sg/extra",
                "sg-0all",
                vec![rule("-1", -1, -1, "0.0.0.0/0")],
            )
        },
        row: "NET-4",
        detail: &["sg/extra (sg-0all): ingress all traffic from 0.0.0.0/0"],
    },
    Case {
        proves: "a private route table with 0.0.0.0/0 to an IGW fails NET-2",
        mutate: |n| {
            if let Spec::RouteTable(RouteTableSpec { routes, .. }) = spec_mut(n, "rt/private-a") {
                routes[0].target = "igw-0a1".into();
            }
        },
        row: "NET-2",
        detail: &["rt/private-a (rtb-priv): route 0.0.0.0/0 -> igw-0a1"],
    },
    Case {
        proves: "a private subnet mapping public IPs fails NET-3",
        mutate: |n| {
            if let Spec::Subnet(SubnetSpec {
                map_public_ip_on_launch,
                ..
            }) = spec_mut(n, "subnet/private-a")
            {
                *map_public_ip_on_launch = true;
            }
        },
        row: "NET-3",
        detail: &["subnet/private-a (subnet-priv): map_public_ip_on_launch true"],
    },
    Case {
        proves: "a default SG with an ingress rule fails NET-5",
        mutate: |n| {
            if let Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { ingress, .. }) =
                spec_mut(n, "vpc/default-sg")
            {
                ingress.push(rule("-1", 0, 0, "sg-0default"));
            }
        },
        row: "NET-5",
        detail: &[
            "vpc/default-sg (sg-0default): 1 ingress rule",
            "all traffic from sg-0default",
        ],
    },
    Case {
        proves: "a default SG with an egress rule fails NET-5",
        mutate: |n| {
            if let Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { egress, .. }) =
                spec_mut(n, "vpc/default-sg")
            {
                egress.push(rule("-1", 0, 0, "0.0.0.0/0"));
            }
        },
        row: "NET-5",
        detail: &[
            "vpc/default-sg (sg-0default): 1 egress rule",
            "to 0.0.0.0/0",
        ],
    },
    Case {
        proves: "bastion SSH from an undeclared CIDR fails NET-6",
        mutate: |n| set_bastion_ingress(n, vec![rule("tcp", 22, 22, "198.51.100.0/24")]),
        row: "NET-6",
        detail: &[
            "sg/bastion (sg-0bastion): ingress tcp 22 from 198.51.100.0/24 (not a declared SSH CIDR)",
        ],
    },
    Case {
        proves: "bastion admitting a port other than 22 fails NET-6",
        mutate: |n| {
            set_bastion_ingress(
                n,
                vec![
                    rule("tcp", 22, 22, ADMIN_CIDR),
                    rule("tcp", 443, 443, ADMIN_CIDR),
                ],
            )
        },
        row: "NET-6",
        detail: &[
            "sg/bastion (sg-0bastion): ingress tcp 443 from 203.0.113.0/24 (bastion allows only tcp 22)",
        ],
    },
    Case {
        proves: "an app SG admitting a CIDR outside the VPC fails NET-6",
        mutate: |n| {
            add_sg(
                n,
                "sg/app",
                "sg-0app",
                vec![rule("tcp", 8080, 8080, "192.168.0.0/16")],
            )
        },
        row: "NET-6",
        detail: &["sg/app (sg-0app): ingress tcp 8080 from 192.168.0.0/16 (outside the VPC CIDR)"],
    },
    Case {
        proves: "a db SG admitting a CIDR instead of a security group fails NET-6",
        mutate: |n| {
            add_sg(
                n,
                "sg/db",
                "sg-0db",
                vec![rule("tcp", 5432, 5432, "10.0.0.0/16")],
            )
        },
        row: "NET-6",
        detail: &["sg/db (sg-0db): ingress tcp 5432 from 10.0.0.0/16"],
    },
    Case {
        proves: "a db SG admitting a foreign security group fails NET-6",
        mutate: |n| {
            add_sg(
                n,
                "sg/db",
                "sg-0db",
                vec![rule("tcp", 5432, 5432, "sg-0stranger")],
            )
        },
        row: "NET-6",
        detail: &[
            "sg/db (sg-0db): ingress tcp 5432 from sg-0stranger (not the app or bastion security group)",
        ],
    },
    Case {
        proves: "an instance with IMDSv1 fails EC2-1",
        mutate: |n| {
            if let Spec::Instance(InstanceSpec {
                imds_v2_required, ..
            }) = spec_mut(n, "instance/bastion")
            {
                *imds_v2_required = false;
            }
        },
        row: "EC2-1",
        detail: &["instance/bastion (i-0bastion): IMDSv2 not required"],
    },
    Case {
        proves: "an unencrypted root volume fails EC2-2",
        mutate: |n| {
            if let Spec::Instance(InstanceSpec {
                root_volume_encrypted,
                ..
            }) = spec_mut(n, "instance/bastion")
            {
                *root_volume_encrypted = false;
            }
        },
        row: "EC2-2",
        detail: &["instance/bastion (i-0bastion): root volume not encrypted"],
    },
    Case {
        proves: "a key with rotation off fails KMS-1",
        mutate: |n| {
            if let Spec::KmsKey(KmsKeySpec {
                rotation_enabled, ..
            }) = spec_mut(n, "kms/logs")
            {
                *rotation_enabled = false;
            }
        },
        row: "KMS-1",
        detail: &["kms/logs (k-1): rotation disabled"],
    },
    Case {
        proves: "a key pending deletion fails KMS-1",
        mutate: |n| {
            if let Spec::KmsKey(KmsKeySpec {
                pending_deletion, ..
            }) = spec_mut(n, "kms/logs")
            {
                *pending_deletion = true;
            }
        },
        row: "KMS-1",
        detail: &["kms/logs (k-1): pending deletion"],
    },
    Case {
        proves: "retention below the minimum fails LOG-1",
        mutate: |n| {
            if let Spec::LogGroup(LogGroupSpec { retention_days, .. }) = spec_mut(n, "logs/flow") {
                *retention_days = 30;
            }
        },
        row: "LOG-1",
        detail: &["logs/flow (lg-flow): retention 30 days (minimum 365)"],
    },
    Case {
        proves: "a log group without a KMS key fails LOG-1",
        mutate: |n| {
            let spec = Spec::LogGroup(LogGroupSpec {
                name: "/hipaa/demo/app".into(),
                retention_days: 365,
                kms_key_arn: String::new(),
            });
            n.push(node("logs/app", "lg-app", spec));
        },
        row: "LOG-1",
        detail: &["logs/app (lg-app): no KMS key"],
    },
    Case {
        proves: "no flow log node at all fails NET-1",
        mutate: |n| n.retain(|n| n.node != "flowlog/vpc"),
        row: "NET-1",
        detail: &["vpc (vpc-0a1): no flow log for the VPC"],
    },
    Case {
        proves: "a declared flow log that does not exist fails NET-1",
        mutate: |n| set_observed(n, "flowlog/vpc", Ok(None)),
        row: "NET-1",
        detail: &["vpc (vpc-0a1): no flow log for the VPC"],
    },
    Case {
        proves: "a flow log of another VPC does not count for NET-1",
        mutate: |n| {
            if let Spec::FlowLog(FlowLogSpec { vpc_id, .. }) = spec_mut(n, "flowlog/vpc") {
                *vpc_id = "vpc-0other".into();
            }
        },
        row: "NET-1",
        detail: &["vpc (vpc-0a1): no flow log for the VPC"],
    },
    Case {
        proves: "a REJECT-only flow log fails NET-1",
        mutate: |n| *spec_mut(n, "flowlog/vpc") = flow_log("REJECT"),
        row: "NET-1",
        detail: &["flowlog/vpc (fl-0a1): traffic type REJECT (needs ALL)"],
    },
    Case {
        proves: "a flow log into a log group that does not exist fails NET-1",
        mutate: |n| {
            if let Spec::FlowLog(FlowLogSpec { log_group_name, .. }) = spec_mut(n, "flowlog/vpc") {
                *log_group_name = "/elsewhere".into();
            }
        },
        row: "NET-1",
        detail: &["flowlog/vpc (fl-0a1): log group /elsewhere does not exist"],
    },
];

#[test]
fn each_violation_fails_its_row_only() {
    for case in CASES {
        let mut nodes = compliant();
        (case.mutate)(&mut nodes);
        let entries = evaluate_network(&nodes, &ctx());
        let e = entry(&entries, case.row);
        assert_eq!(e.result, Failed, "{}: {e:?}", case.proves);
        for want in case.detail {
            assert!(
                e.detail.contains(want),
                "{}: detail {:?} lacks {want:?}",
                case.proves,
                e.detail
            );
        }
        for other in entries.iter().filter(|o| o.id != case.row) {
            assert_eq!(
                other.result, Passed,
                "{}: only {} fails, but {other:?}",
                case.proves, case.row
            );
        }
    }
}

#[test]
fn flow_log_into_unencrypted_group_fails_net1_and_log1() {
    // Proves NET-1 checks the flow log's destination group for a KMS key.
    let mut nodes = compliant();
    if let Spec::LogGroup(LogGroupSpec { kms_key_arn, .. }) = spec_mut(&mut nodes, "logs/flow") {
        kms_key_arn.clear();
    }
    let entries = evaluate_network(&nodes, &ctx());
    let net1 = entry(&entries, "NET-1");
    assert_eq!(net1.result, Failed);
    assert!(net1.detail.contains(
        "flowlog/vpc (fl-0a1): log group /hipaa/demo/vpc-flow (logs/flow) has no KMS key"
    ));
    assert_eq!(entry(&entries, "LOG-1").result, Failed);
}

#[test]
fn an_all_flow_log_next_to_a_reject_one_passes_net1() {
    // Proves NET-1 asks for one qualifying flow log, not that every flow log is ALL.
    let mut nodes = compliant();
    nodes.push(node("flowlog/reject", "fl-0rej", flow_log("REJECT")));
    assert_eq!(
        entry(&evaluate_network(&nodes, &ctx()), "NET-1").result,
        Passed
    );
}

/// Unobservable nodes: which rows become Unknown (never Passed), the rest unaffected.
struct UnknownCase {
    proves: &'static str,
    node: &'static str,
    unknown_rows: &'static [&'static str],
}

const UNKNOWN_CASES: &[UnknownCase] = &[
    UnknownCase {
        proves: "a denied security group read leaves NET-4 and NET-6 Unknown",
        node: "sg/bastion",
        unknown_rows: &["NET-4", "NET-6"],
    },
    UnknownCase {
        proves: "a denied flow log read leaves NET-1 Unknown",
        node: "flowlog/vpc",
        unknown_rows: &["NET-1"],
    },
    UnknownCase {
        proves: "a denied log group read leaves NET-1 (its destination) and LOG-1 Unknown",
        node: "logs/flow",
        unknown_rows: &["NET-1", "LOG-1"],
    },
    UnknownCase {
        proves: "a denied KMS read leaves KMS-1 Unknown",
        node: "kms/logs",
        unknown_rows: &["KMS-1"],
    },
    UnknownCase {
        proves: "a denied instance read leaves EC2-1 and EC2-2 Unknown",
        node: "instance/bastion",
        unknown_rows: &["EC2-1", "EC2-2"],
    },
    UnknownCase {
        proves: "a denied route table read leaves NET-2 Unknown",
        node: "rt/private-a",
        unknown_rows: &["NET-2"],
    },
    UnknownCase {
        proves: "a denied subnet read leaves NET-3 Unknown",
        node: "subnet/private-a",
        unknown_rows: &["NET-3"],
    },
    UnknownCase {
        proves: "a denied default SG read leaves NET-4 and NET-5 Unknown",
        node: "vpc/default-sg",
        unknown_rows: &["NET-4", "NET-5"],
    },
    UnknownCase {
        proves: "a denied VPC read leaves NET-1 Unknown",
        node: "vpc",
        unknown_rows: &["NET-1"],
    },
];

#[test]
fn unobservable_node_is_unknown_never_passed() {
    for case in UNKNOWN_CASES {
        let mut nodes = compliant();
        set_observed(
            &mut nodes,
            case.node,
            Err("AccessDenied: not authorized to perform ec2:Describe*".into()),
        );
        let entries = evaluate_network(&nodes, &ctx());
        for e in &entries {
            let expected = if case.unknown_rows.contains(&e.id.as_str()) {
                Unknown
            } else {
                Passed
            };
            assert_eq!(e.result, expected, "{}: {e:?}", case.proves);
            if expected == Unknown {
                assert!(
                    e.detail.contains(case.node),
                    "{}: detail names the node: {e:?}",
                    case.proves
                );
                if e.id != "NET-1" || case.node != "logs/flow" {
                    assert!(
                        e.detail.contains("AccessDenied"),
                        "{}: detail says why: {e:?}",
                        case.proves
                    );
                }
            }
        }
    }
}

#[test]
fn a_definite_violation_wins_over_an_unobservable_node() {
    // Proves Failed is reported (with the unobservable node noted) rather than Unknown.
    let mut nodes = compliant();
    set_observed(&mut nodes, "sg/bastion", Err("AccessDenied".into()));
    add_sg(
        &mut nodes,
        "sg/extra",
        "sg-0open",
        vec![rule("tcp", 22, 22, "0.0.0.0/0")],
    );
    let e = evaluate_network(&nodes, &ctx())
        .into_iter()
        .find(|e| e.id == "NET-4")
        .unwrap();
    assert_eq!(e.result, Failed);
    assert!(
        e.detail
            .contains("sg/extra (sg-0open): ingress tcp 22 from 0.0.0.0/0"),
        "{e:?}"
    );
    assert!(
        e.detail
            .contains("sg/bastion: could not be observed (AccessDenied)"),
        "{e:?}"
    );
}

#[test]
fn missing_required_resources_fail() {
    // Proves a declared resource that does not exist is Failed ("does not exist"), not Passed.
    for (key, row) in [
        ("kms/logs", "KMS-1"),
        ("logs/flow", "LOG-1"),
        ("instance/bastion", "EC2-1"),
        ("subnet/private-a", "NET-3"),
        ("rt/private-a", "NET-2"),
        ("vpc/default-sg", "NET-5"),
        ("sg/bastion", "NET-6"),
    ] {
        let mut nodes = compliant();
        set_observed(&mut nodes, key, Ok(None));
        let e = evaluate_network(&nodes, &ctx())
            .into_iter()
            .find(|e| e.id == row)
            .unwrap();
        assert_eq!(e.result, Failed, "{key}: {e:?}");
        assert!(
            e.detail.contains(&format!("{key}: does not exist")),
            "{e:?}"
        );
    }
    // A missing security group cannot open SSH: NET-4 still passes.
    let mut nodes = compliant();
    set_observed(&mut nodes, "sg/bastion", Ok(None));
    assert_eq!(
        entry(&evaluate_network(&nodes, &ctx()), "NET-4").result,
        Passed
    );
}

#[test]
fn net5_without_a_default_sg_node_is_unknown() {
    // Proves the row is not passed vacuously when the default SG was never observed.
    let mut nodes = compliant();
    nodes.retain(|n| n.kind != Kind::DefaultSecurityGroup);
    assert_eq!(
        entry(&evaluate_network(&nodes, &ctx()), "NET-5").result,
        Unknown
    );
}

#[test]
fn ec2_3_applies_only_to_application_instances() {
    // Proves the public bastion is not judged by EC2-3, and app instances are.
    let mut nodes = compliant();
    nodes.push(node("instance/app-0", "i-0app", instance(false)));
    let entries = evaluate_network(&nodes, &ctx());
    assert_eq!(
        ids(&entries),
        [
            "NET-1", "NET-2", "NET-3", "NET-4", "NET-5", "NET-6", "EC2-1", "EC2-2", "EC2-3",
            "KMS-1", "LOG-1"
        ]
    );
    assert_eq!(ids(&entries), NETWORK_CONTROLS);
    assert_eq!(entry(&entries, "EC2-3").result, Passed);

    let mut nodes = compliant();
    let mut app = obs("i-0app", instance(true));
    app.attributes.insert("publicIp".into(), "54.1.2.3".into());
    nodes.push(ObservedNode {
        node: "instance/app-0".into(),
        kind: Kind::Instance,
        observed: Ok(Some(app)),
    });
    let e = evaluate_network(&nodes, &ctx())
        .into_iter()
        .find(|e| e.id == "EC2-3")
        .unwrap();
    assert_eq!(e.result, Failed);
    assert!(
        e.detail
            .contains("instance/app-0 (i-0app): associate_public_ip true"),
        "{e:?}"
    );
    assert!(
        e.detail
            .contains("instance/app-0 (i-0app): public IP 54.1.2.3"),
        "{e:?}"
    );

    let mut nodes = compliant();
    nodes.push(ObservedNode {
        node: "instance/app-0".into(),
        kind: Kind::Instance,
        observed: Err("denied".into()),
    });
    assert_eq!(
        entry(&evaluate_network(&nodes, &ctx()), "EC2-3").result,
        Unknown
    );
}

#[test]
fn tiered_security_groups_pass_with_their_declared_sources() {
    // Proves app (subnet of the VPC CIDR), db (app/bastion SG ids) and bastion (narrower
    // than a declared CIDR) rules pass NET-6.
    let mut nodes = compliant();
    set_bastion_ingress(&mut nodes, vec![rule("tcp", 22, 22, "203.0.113.7/32")]);
    add_sg(
        &mut nodes,
        "sg/app",
        "sg-0app",
        vec![rule("tcp", 8080, 8080, "10.0.10.0/24")],
    );
    add_sg(
        &mut nodes,
        "sg/db",
        "sg-0db",
        vec![
            rule("tcp", 5432, 5432, "sg-0app"),
            rule("tcp", 5432, 5432, "sg-0bastion"),
        ],
    );
    let e = evaluate_network(&nodes, &ctx())
        .into_iter()
        .find(|e| e.id == "NET-6")
        .unwrap();
    assert_eq!(e.result, Passed, "{e:?}");
    assert!(
        e.detail.contains("app: only from the VPC CIDR") && e.detail.contains("db:"),
        "{e:?}"
    );
}

#[test]
fn app_sg_uses_the_observed_vpc_cidr_when_the_context_has_none() {
    // Proves the VPC node's CIDR stands in for an empty ctx.vpc_cidr.
    let mut nodes = compliant();
    add_sg(
        &mut nodes,
        "sg/app",
        "sg-0app",
        vec![rule("tcp", 8080, 8080, "10.0.0.0/16")],
    );
    let ctx = Context {
        vpc_cidr: String::new(),
        ..ctx()
    };
    assert_eq!(
        entry(&evaluate_network(&nodes, &ctx), "NET-6").result,
        Passed
    );
}

#[test]
fn db_sg_source_is_unknown_when_the_app_sg_cannot_be_observed() {
    // Proves an unverifiable SG reference is Unknown, not Failed or Passed.
    let mut nodes = compliant();
    nodes.push(ObservedNode {
        node: "sg/app".into(),
        kind: Kind::SecurityGroup,
        observed: Err("denied".into()),
    });
    add_sg(
        &mut nodes,
        "sg/db",
        "sg-0db",
        vec![rule("tcp", 5432, 5432, "sg-0app")],
    );
    assert_eq!(
        entry(&evaluate_network(&nodes, &ctx()), "NET-6").result,
        Unknown
    );
}

#[test]
fn log1_honours_the_configured_minimum() {
    // Proves min_log_retention_days is the threshold, and 0 (never expire) meets it.
    let mut nodes = compliant();
    if let Spec::LogGroup(LogGroupSpec { retention_days, .. }) = spec_mut(&mut nodes, "logs/flow") {
        *retention_days = 400;
    }
    let strict = Context {
        min_log_retention_days: 2192,
        ..ctx()
    };
    let e = evaluate_network(&nodes, &strict)
        .into_iter()
        .find(|e| e.id == "LOG-1")
        .unwrap();
    assert_eq!(e.result, Failed);
    assert!(
        e.detail.contains("retention 400 days (minimum 2192)"),
        "{e:?}"
    );

    if let Spec::LogGroup(LogGroupSpec { retention_days, .. }) = spec_mut(&mut nodes, "logs/flow") {
        *retention_days = 0;
    }
    assert_eq!(
        entry(&evaluate_network(&nodes, &strict), "LOG-1").result,
        Passed
    );
}

#[test]
fn details_never_dump_specs_and_long_errors_are_cut() {
    // Proves details name node, id and value only: no role ARNs, no serialized specs, and
    // a long observe error is truncated.
    let mut nodes = compliant();
    *spec_mut(&mut nodes, "flowlog/vpc") = flow_log("REJECT");
    set_observed(
        &mut nodes,
        "kms/logs",
        Err(format!("AccessDenied: {}\nsecond line", "x".repeat(500))),
    );
    for e in evaluate_network(&nodes, &ctx()) {
        assert!(
            !e.detail.contains("role_arn") && !e.detail.contains(":role/"),
            "{e:?}"
        );
        assert!(
            !e.detail.contains('{') && !e.detail.contains("second line"),
            "{e:?}"
        );
        assert!(e.detail.len() < 400, "{e:?}");
    }
}

#[test]
fn many_findings_are_counted_not_listed() {
    // Proves a detail stays bounded when many resources fail.
    let mut nodes = compliant();
    for i in 0..20 {
        add_sg(
            &mut nodes,
            &format!("sg/open-{i}"),
            &format!("sg-{i}"),
            vec![rule("tcp", 22, 22, "0.0.0.0/0")],
        );
    }
    let e = evaluate_network(&nodes, &ctx())
        .into_iter()
        .find(|e| e.id == "NET-4")
        .unwrap();
    assert_eq!(e.result, Failed);
    assert!(e.detail.ends_with("; and 12 more"), "{e:?}");
}

#[test]
fn citations_come_from_the_control_table() {
    // Proves every row has a full 45 CFR citation and the network rows map as the table says.
    assert_eq!(CONTROLS.len(), 46);
    assert_eq!(citation("NET-1"), "45 CFR 164.312(b)");
    assert_eq!(citation("NET-2"), "45 CFR 164.312(e)(1)");
    assert_eq!(citation("NET-3"), "45 CFR 164.312(a)(1)");
    assert_eq!(citation("EC2-2"), "45 CFR 164.312(a)(2)(iv)");
    assert_eq!(citation("S3-3"), "45 CFR 164.308(a)(7)(ii)(A)");
    assert_eq!(citation("LOG-1"), "45 CFR 164.312(b)");
    assert_eq!(citation("NOPE-1"), "");
    for c in CONTROLS {
        assert!(c.citation.starts_with("45 CFR 164.3"), "{c:?}");
    }
    let table: Vec<&str> = CONTROLS
        .iter()
        .map(|c| c.id)
        .filter(|id| NETWORK_CONTROLS.contains(id))
        .collect();
    assert_eq!(
        table, NETWORK_CONTROLS,
        "network rows are reported in the table's order"
    );
}

#[test]
fn entries_serialize_as_the_status_expects() {
    // Proves the camelCase status shape (id, citation, result, detail).
    let e = evaluate_network(&compliant(), &ctx()).remove(0);
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["id"], "NET-1");
    assert_eq!(json["citation"], "45 CFR 164.312(b)");
    assert_eq!(json["result"], "Passed");
    assert!(json["detail"].is_string());
}

#[test]
fn cidr_containment() {
    // Proves the subnet check used by NET-6.
    for (inner, outer, expected) in [
        ("10.0.10.0/24", "10.0.0.0/16", true),
        ("10.1.0.0/24", "10.0.0.0/16", false),
        ("10.0.0.0/8", "10.0.0.0/16", false),
        ("203.0.113.7/32", "203.0.113.0/24", true),
        ("0.0.0.0/0", "203.0.113.0/24", false),
        ("1.2.3.4/32", "0.0.0.0/0", true),
        ("2001:db8::/64", "2001:db8::/32", true),
        ("2001:db8::/64", "10.0.0.0/8", false),
        ("sg-0app", "10.0.0.0/16", false),
    ] {
        assert_eq!(
            network::within(inner, outer),
            expected,
            "{inner} within {outer}"
        );
    }
}
