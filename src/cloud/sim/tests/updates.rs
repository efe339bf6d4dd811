//! Update changes only what differs, one AWS operation per difference; immutable fields
//! are refused naming the field; tag drift sets the desired keys and removes nothing.

use crate::cloud::sim::SimCloud;
use crate::cloud::sim::testkit::*;
use crate::cloud::{
    CallOutcome, DefaultSecurityGroupSpec, Desired, FlowLogSpec, IamRoleSpec, InstanceSpec,
    InternetGatewaySpec, Kind, KmsKeySpec, LogGroupSpec, NatGatewaySpec, Observed, Provider,
    RouteTableSpec, SecurityGroupSpec, Spec, SubnetSpec, TAG_NODE, VpcSpec,
};

fn current(sim: &SimCloud, id: &str) -> Observed {
    sim.resources()
        .into_iter()
        .find(|(_, o)| o.id == id)
        .unwrap_or_else(|| panic!("{id} exists"))
        .1
}

/// `observed`'s spec changed by `change`, with the observed tags (so no tag drift).
fn wanting(observed: &Observed, change: impl FnOnce(&mut Spec)) -> Desired {
    let mut spec = observed.spec.clone();
    change(&mut spec);
    let node = observed.tags.get(TAG_NODE).cloned().unwrap_or_default();
    Desired {
        node,
        spec,
        tags: observed.tags.clone(),
        client_token: String::new(),
    }
}

type Change = Box<dyn FnOnce(&mut Spec)>;

#[tokio::test]
async fn each_update_operation_changes_only_the_differing_field() {
    let sim = sim();
    let net = network(&sim).await;
    let nat = make(&sim, "nat", nat_spec(&net.public, &net.eip)).await.id;
    let vpc2 = make(&sim, "vpc2", vpc_spec()).await.id;
    let igw2 = make(
        &sim,
        "igw2",
        Spec::InternetGateway(InternetGatewaySpec {
            vpc_id: String::new(),
        }),
    )
    .await
    .id;
    let rt = make(&sim, "rt", table_spec(&net.vpc, vec![], &[])).await.id;
    let vm = make(&sim, "vm", instance_spec(&net.private, &net.sg, false))
        .await
        .id;
    let key = make(&sim, "key", key_spec(true)).await;
    let logs = make(&sim, "logs", log_spec("/hipaa/app", 30, "")).await.id;
    let role = make(&sim, "role", role_spec("app", &["logs:PutLogEvents"]))
        .await
        .id;
    let default_sg = sim
        .resources()
        .into_iter()
        .find(|(k, o)| {
            *k == Kind::DefaultSecurityGroup
                && matches!(&o.spec, Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { vpc_id, .. }) if *vpc_id == net.vpc)
        })
        .unwrap()
        .1
        .id;
    let (igw, key_arn, private) = (
        net.igw.clone(),
        key.arn.clone().unwrap(),
        net.private.clone(),
    );
    let (nat2, vpc2b, default_for_vm) = (nat.clone(), vpc2.clone(), default_sg.clone());

    let cases: Vec<(&str, String, Change, Vec<&str>)> = vec![
        (
            "no difference, no call",
            net.vpc.clone(),
            Box::new(|_| {}),
            vec![],
        ),
        (
            "VPC DNS hostnames",
            net.vpc.clone(),
            Box::new(|s| {
                if let Spec::Vpc(VpcSpec {
                    enable_dns_hostnames,
                    ..
                }) = s
                {
                    *enable_dns_hostnames = true
                }
            }),
            vec!["ModifyVpcAttribute"],
        ),
        (
            "subnet public IPs",
            net.public.clone(),
            Box::new(|s| {
                if let Spec::Subnet(SubnetSpec {
                    map_public_ip_on_launch,
                    ..
                }) = s
                {
                    *map_public_ip_on_launch = true
                }
            }),
            vec!["ModifySubnetAttribute"],
        ),
        (
            "SG ingress added",
            net.sg.clone(),
            Box::new(|s| {
                if let Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) = s {
                    ingress.push(tcp(443, "10.0.0.0/16"))
                }
            }),
            vec!["AuthorizeSecurityGroupIngress"],
        ),
        (
            "SG ingress removed",
            net.sg.clone(),
            Box::new(|s| {
                if let Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) = s {
                    ingress.clear()
                }
            }),
            vec!["RevokeSecurityGroupIngress"],
        ),
        (
            "SG egress added",
            net.sg.clone(),
            Box::new(|s| {
                if let Spec::SecurityGroup(SecurityGroupSpec { egress, .. }) = s {
                    *egress = vec![tcp(443, "0.0.0.0/0")]
                }
            }),
            vec!["AuthorizeSecurityGroupEgress"],
        ),
        (
            "SG egress swapped",
            net.sg.clone(),
            Box::new(|s| {
                if let Spec::SecurityGroup(SecurityGroupSpec { egress, .. }) = s {
                    *egress = vec![tcp(80, "0.0.0.0/0")]
                }
            }),
            vec!["AuthorizeSecurityGroupEgress", "RevokeSecurityGroupEgress"],
        ),
        (
            "default SG rules revoked",
            default_sg,
            Box::new(|s| {
                if let Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
                    ingress,
                    egress,
                    ..
                }) = s
                {
                    ingress.clear();
                    egress.clear()
                }
            }),
            vec!["RevokeSecurityGroupEgress", "RevokeSecurityGroupIngress"],
        ),
        (
            "instance IMDSv2",
            vm.clone(),
            Box::new(|s| {
                if let Spec::Instance(InstanceSpec {
                    imds_v2_required, ..
                }) = s
                {
                    *imds_v2_required = false
                }
            }),
            vec!["ModifyInstanceMetadataOptions"],
        ),
        (
            "instance groups",
            vm.clone(),
            Box::new(move |s| {
                if let Spec::Instance(InstanceSpec {
                    security_group_ids, ..
                }) = s
                {
                    *security_group_ids = vec![default_for_vm]
                }
            }),
            vec!["ModifyInstanceAttribute"],
        ),
        (
            "route added",
            rt.clone(),
            Box::new(move |s| {
                if let Spec::RouteTable(RouteTableSpec { routes, .. }) = s {
                    routes.push(route("0.0.0.0/0", &igw))
                }
            }),
            vec!["CreateRoute"],
        ),
        (
            "route retargeted",
            rt.clone(),
            Box::new(move |s| {
                if let Spec::RouteTable(RouteTableSpec { routes, .. }) = s {
                    routes[0].target = nat2
                }
            }),
            vec!["ReplaceRoute"],
        ),
        (
            "route removed",
            rt.clone(),
            Box::new(|s| {
                if let Spec::RouteTable(RouteTableSpec { routes, .. }) = s {
                    routes.clear()
                }
            }),
            vec!["DeleteRoute"],
        ),
        (
            "subnet associated",
            rt.clone(),
            Box::new(move |s| {
                if let Spec::RouteTable(RouteTableSpec { subnet_ids, .. }) = s {
                    subnet_ids.push(private)
                }
            }),
            vec!["AssociateRouteTable"],
        ),
        (
            "subnet disassociated",
            rt.clone(),
            Box::new(|s| {
                if let Spec::RouteTable(RouteTableSpec { subnet_ids, .. }) = s {
                    subnet_ids.clear()
                }
            }),
            vec!["DisassociateRouteTable"],
        ),
        (
            "IGW attached",
            igw2.clone(),
            Box::new(move |s| *s = Spec::InternetGateway(InternetGatewaySpec { vpc_id: vpc2b })),
            vec!["AttachInternetGateway"],
        ),
        (
            "IGW detached",
            igw2.clone(),
            Box::new(|s| {
                *s = Spec::InternetGateway(InternetGatewaySpec {
                    vpc_id: String::new(),
                })
            }),
            vec!["DetachInternetGateway"],
        ),
        (
            "log retention",
            logs.clone(),
            Box::new(|s| {
                if let Spec::LogGroup(LogGroupSpec { retention_days, .. }) = s {
                    *retention_days = 365
                }
            }),
            vec!["PutRetentionPolicy"],
        ),
        (
            "log retention to never",
            logs.clone(),
            Box::new(|s| {
                if let Spec::LogGroup(LogGroupSpec { retention_days, .. }) = s {
                    *retention_days = 0
                }
            }),
            vec!["DeleteRetentionPolicy"],
        ),
        (
            "log encryption",
            logs.clone(),
            Box::new(move |s| {
                if let Spec::LogGroup(LogGroupSpec { kms_key_arn, .. }) = s {
                    *kms_key_arn = key_arn
                }
            }),
            vec!["AssociateKmsKey"],
        ),
        (
            "key rotation off",
            key.id.clone(),
            Box::new(|s| {
                if let Spec::KmsKey(KmsKeySpec {
                    rotation_enabled, ..
                }) = s
                {
                    *rotation_enabled = false
                }
            }),
            vec!["DisableKeyRotation"],
        ),
        (
            "key rotation on",
            key.id.clone(),
            Box::new(|s| {
                if let Spec::KmsKey(KmsKeySpec {
                    rotation_enabled, ..
                }) = s
                {
                    *rotation_enabled = true
                }
            }),
            vec!["EnableKeyRotation"],
        ),
        (
            "key description",
            key.id.clone(),
            Box::new(|s| {
                if let Spec::KmsKey(KmsKeySpec { description, .. }) = s {
                    *description = "phi".into()
                }
            }),
            vec!["UpdateKeyDescription"],
        ),
        (
            "role actions",
            role.clone(),
            Box::new(|s| {
                if let Spec::IamRole(IamRoleSpec { statements, .. }) = s {
                    statements.push(crate::cloud::PolicyStatement::new(
                        &["logs:CreateLogStream"],
                        &["*"],
                    ))
                }
            }),
            vec!["PutRolePolicy"],
        ),
        (
            "role trust",
            role.clone(),
            Box::new(|s| {
                if let Spec::IamRole(IamRoleSpec {
                    trusted_service, ..
                }) = s
                {
                    *trusted_service = "ec2.amazonaws.com".into()
                }
            }),
            vec!["UpdateAssumeRolePolicy"],
        ),
    ];
    for (what, id, change, expected) in cases {
        let observed = current(&sim, &id);
        let desired = wanting(&observed, change);
        sim.reset_calls();
        let updated = sim
            .update(&desired, &observed)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ops(&sim), expected, "{what}: the calls made");
        assert_eq!(
            updated.spec.fields(),
            desired.spec.fields(),
            "{what}: the result is the desired spec, nothing else moved"
        );
        assert!(
            sim.calls().keys().all(|(_, _, o)| *o == CallOutcome::Ok),
            "{what}"
        );
    }
}

#[tokio::test]
async fn immutable_fields_are_refused_by_name() {
    let sim = sim();
    let net = network(&sim).await;
    let nat = make(&sim, "nat", nat_spec(&net.public, &net.eip)).await.id;
    let vm = make(&sim, "vm", instance_spec(&net.private, &net.sg, false))
        .await
        .id;
    let flow = make(&sim, "flow", flow_spec(&net.vpc)).await.id;
    let (public, private) = (net.public.clone(), net.private.clone());
    let cases: Vec<(&str, String, Change)> = vec![
        (
            "cidrBlock",
            net.vpc.clone(),
            Box::new(|s| {
                if let Spec::Vpc(VpcSpec { cidr_block, .. }) = s {
                    *cidr_block = "10.1.0.0/16".into()
                }
            }),
        ),
        (
            "cidrBlock",
            net.public.clone(),
            Box::new(|s| {
                if let Spec::Subnet(SubnetSpec { cidr_block, .. }) = s {
                    *cidr_block = "10.0.9.0/24".into()
                }
            }),
        ),
        (
            "availabilityZone",
            net.public.clone(),
            Box::new(|s| {
                if let Spec::Subnet(SubnetSpec {
                    availability_zone, ..
                }) = s
                {
                    *availability_zone = "us-east-1c".into()
                }
            }),
        ),
        (
            "subnetId",
            vm.clone(),
            Box::new(move |s| {
                if let Spec::Instance(InstanceSpec { subnet_id, .. }) = s {
                    *subnet_id = public
                }
            }),
        ),
        (
            "imageId",
            vm.clone(),
            Box::new(|s| {
                if let Spec::Instance(InstanceSpec { image_id, .. }) = s {
                    *image_id = "ami-1111111111111111a".into()
                }
            }),
        ),
        (
            "subnetId",
            nat.clone(),
            Box::new(move |s| {
                if let Spec::NatGateway(NatGatewaySpec { subnet_id, .. }) = s {
                    *subnet_id = private
                }
            }),
        ),
        (
            "trafficType",
            flow.clone(),
            Box::new(|s| {
                if let Spec::FlowLog(FlowLogSpec { traffic_type, .. }) = s {
                    *traffic_type = "REJECT".into()
                }
            }),
        ),
        (
            "name",
            net.sg.clone(),
            Box::new(|s| {
                if let Spec::SecurityGroup(SecurityGroupSpec { name, .. }) = s {
                    *name = "renamed".into()
                }
            }),
        ),
    ];
    for (field, id, change) in cases {
        let observed = current(&sim, &id);
        let desired = wanting(&observed, change);
        sim.reset_calls();
        let err = sim.update(&desired, &observed).await.unwrap_err();
        assert_eq!(code(&err), "InvalidParameterValue", "{field} of {id}");
        assert!(err.to_string().contains(field), "{err} names {field}");
        assert!(ops(&sim).is_empty(), "{field}: refused before any call");
        assert_eq!(
            current(&sim, &id).spec,
            observed.spec,
            "{field}: nothing changed"
        );
    }
}

#[tokio::test]
async fn tag_drift_sets_desired_keys_and_keeps_foreign_ones() {
    let sim = sim();
    let vpc = make(&sim, "vpc", vpc_spec()).await;
    sim.set_tag(Kind::Vpc, &vpc.id, "team", "someone-else")
        .unwrap();
    sim.set_tag(Kind::Vpc, &vpc.id, "cost-center", "42")
        .unwrap();
    let observed = current(&sim, &vpc.id);
    sim.reset_calls();
    let updated = sim
        .update(&desired("vpc", vpc_spec()), &observed)
        .await
        .unwrap();
    assert_eq!(ops(&sim), vec!["CreateTags"]);
    assert_eq!(
        updated.tags.get("team").map(String::as_str),
        Some("platform"),
        "drifted value restored"
    );
    assert_eq!(
        updated.tags.get("cost-center").map(String::as_str),
        Some("42"),
        "a tag desired does not list stays"
    );
}

#[tokio::test]
async fn update_of_a_kind_mismatch_is_terminal() {
    let sim = sim();
    let vpc = make(&sim, "vpc", vpc_spec()).await;
    let err = sim
        .update(&desired("vpc", key_spec(true)), &vpc)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterValue");
}
