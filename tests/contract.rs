//! One contract, two backends: every resource kind behaves alike on the simulated AWS
//! and on moto's server (real AWS APIs, through the AWS SDK). For every kind: create,
//! observe by id, observe by tags when the id is unknown, idempotent create, update of
//! each managed field, an out-of-band change detected as drift, delete, delete of the
//! already deleted, and DependencyViolation surfaced as retryable.
//!
//! moto is required: `.ci/with-moto` starts it and sets `MOTO_ENDPOINT`; without it the
//! moto half fails (it never skips silently).

use std::collections::BTreeMap;

use hipaa_operator::cloud::aws::{AwsCloud, sdk_config};
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{
    CloudError, DefaultSecurityGroupSpec, Desired, ElasticIpSpec, FlowLogSpec, IamRoleSpec,
    InstanceSpec, InternetGatewaySpec, Kind, KmsKeySpec, LogGroupSpec, Lookup, NatGatewaySpec,
    Observed, Owner, Provider, Route, RouteTableSpec, SecurityGroupSpec, SgRule, Spec, State,
    SubnetSpec, VpcSpec, ownership_tags,
};
use hipaa_operator::engine::diff::diff;

fn owner(backend: &str) -> Owner {
    Owner {
        kind: "HipaaNetwork".into(),
        namespace: "contract".into(),
        name: format!("{backend}-{}", uuid::Uuid::new_v4().simple()),
    }
}

fn desired(owner: &Owner, node: &str, spec: Spec) -> Desired {
    let tags = ownership_tags(
        owner,
        node,
        &BTreeMap::from([("team".to_string(), "contract".to_string())]),
    );
    Desired {
        node: node.into(),
        spec,
        tags,
        client_token: format!("contract-{}-{node}", owner.name).replace('/', "-"),
    }
}

async fn observe_one<P: Provider>(
    p: &P,
    owner: &Owner,
    d: &Desired,
    id: Option<&str>,
) -> Option<Observed> {
    let lookup = Lookup {
        node: d.node.clone(),
        recorded_id: id.map(String::from),
        desired: Some(d.spec.clone()),
    };
    p.observe(d.spec.kind(), owner, &[lookup])
        .await
        .expect("observe")
        .into_iter()
        .next()
        .flatten()
}

/// Waits (briefly) for an asynchronous resource to become available.
async fn available<P: Provider>(p: &P, owner: &Owner, d: &Desired, id: &str) -> Observed {
    for _ in 0..400 {
        if let Some(o) = observe_one(p, owner, d, Some(id)).await
            && o.state == State::Available
        {
            return o;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{} {id} never became available", d.node);
}

/// A mutation of one managed field, for the update and drift checks.
type Mutation = (&'static str, fn(&mut Spec));

fn mutations(kind: Kind) -> Vec<Mutation> {
    match kind {
        Kind::KmsKey => vec![("rotationEnabled", |s| {
            if let Spec::KmsKey(KmsKeySpec {
                rotation_enabled, ..
            }) = s
            {
                *rotation_enabled = false
            }
        })],
        Kind::LogGroup => vec![("retentionDays", |s| {
            if let Spec::LogGroup(LogGroupSpec { retention_days, .. }) = s {
                *retention_days = 30
            }
        })],
        Kind::IamRole => vec![("allowedActions", |s| {
            if let Spec::IamRole(IamRoleSpec {
                allowed_actions, ..
            }) = s
            {
                allowed_actions.push("logs:GetLogEvents".into())
            }
        })],
        Kind::Vpc => vec![("enableDnsHostnames", |s| {
            if let Spec::Vpc(VpcSpec {
                enable_dns_hostnames,
                ..
            }) = s
            {
                *enable_dns_hostnames = !*enable_dns_hostnames
            }
        })],
        Kind::Subnet => vec![("mapPublicIpOnLaunch", |s| {
            if let Spec::Subnet(SubnetSpec {
                map_public_ip_on_launch,
                ..
            }) = s
            {
                *map_public_ip_on_launch = true
            }
        })],
        Kind::SecurityGroup => vec![("ingress", |s| {
            if let Spec::SecurityGroup(SecurityGroupSpec { ingress, .. }) = s {
                ingress.push(SgRule {
                    protocol: "tcp".into(),
                    from_port: 443,
                    to_port: 443,
                    source: "198.51.100.0/24".into(),
                })
            }
        })],
        Kind::Instance => vec![("imdsV2Required", |s| {
            if let Spec::Instance(InstanceSpec {
                imds_v2_required, ..
            }) = s
            {
                *imds_v2_required = false
            }
        })],
        Kind::DefaultSecurityGroup => vec![("ingress", |s| {
            if let Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec { ingress, .. }) = s {
                ingress.push(SgRule {
                    protocol: "tcp".into(),
                    from_port: 22,
                    to_port: 22,
                    source: "0.0.0.0/0".into(),
                })
            }
        })],
        Kind::InternetGateway => vec![("vpcId", |s| {
            if let Spec::InternetGateway(InternetGatewaySpec { vpc_id }) = s {
                vpc_id.clear()
            }
        })],
        Kind::RouteTable => vec![
            ("routes", |s| {
                if let Spec::RouteTable(RouteTableSpec { routes, .. }) = s {
                    routes.clear()
                }
            }),
            ("subnetIds", |s| {
                if let Spec::RouteTable(RouteTableSpec { subnet_ids, .. }) = s {
                    subnet_ids.clear()
                }
            }),
        ],
        // Elastic IPs, NAT gateways and flow logs have no field AWS can change in place.
        _ => vec![],
    }
}

/// What a backend does differently from AWS (the simulator follows AWS in everything).
#[derive(Clone, Copy)]
struct Quirks {
    /// moto ignores ClientToken on CreateNatGateway, CreateRouteTable, RunInstances and
    /// CreateFlowLogs: a repeated create makes a second resource (or fails: a NAT gateway
    /// on the Elastic IP it already holds, a flow log with FlowLogAlreadyExists). The engine does not rely on tokens alone: before retrying a
    /// create it looks the resource up by its ownership tags.
    ignores_client_tokens: bool,
}

const AWS: Quirks = Quirks {
    ignores_client_tokens: false,
};
const MOTO: Quirks = Quirks {
    ignores_client_tokens: true,
};

/// Runs the contract for one kind: returns the created resource (left in place for
/// dependents).
async fn kind_contract<P: Provider>(
    p: &P,
    backend: &str,
    quirks: Quirks,
    owner: &Owner,
    d: Desired,
) -> Observed {
    let kind = d.spec.kind();
    let what = format!("{backend} {kind:?}");
    let created = p
        .create(&d)
        .await
        .unwrap_or_else(|e| panic!("{what}: create: {e}"));
    assert!(!created.id.is_empty(), "{what}: an id");
    let created = if created.state == State::Pending {
        available(p, owner, &d, &created.id).await
    } else {
        created
    };
    let by_id = observe_one(p, owner, &d, Some(&created.id))
        .await
        .unwrap_or_else(|| panic!("{what}: observe by id"));
    assert_eq!(by_id.id, created.id, "{what}: observe by id");
    assert_eq!(
        diff(&d.node, &d.spec, &d.tags, &by_id),
        vec![],
        "{what}: observed as desired"
    );
    let by_tags = observe_one(p, owner, &d, None)
        .await
        .unwrap_or_else(|| panic!("{what}: observe by tags"));
    assert_eq!(
        by_tags.id, created.id,
        "{what}: observe by tags finds the same resource"
    );

    // Idempotent create: client-token kinds return the first, named kinds refuse.
    match kind {
        Kind::Instance | Kind::NatGateway | Kind::RouteTable | Kind::FlowLog
            if quirks.ignores_client_tokens => {}
        Kind::Instance | Kind::NatGateway | Kind::FlowLog | Kind::RouteTable => {
            let again = p
                .create(&d)
                .await
                .unwrap_or_else(|e| panic!("{what}: retried create: {e}"));
            assert_eq!(
                again.id, created.id,
                "{what}: the client token returns the first"
            );
        }
        Kind::LogGroup | Kind::IamRole | Kind::SecurityGroup => match p.create(&d).await {
            Err(CloudError::Terminal { code, .. }) => assert!(
                code.contains("AlreadyExists") || code.contains("Duplicate"),
                "{what}: {code}"
            ),
            other => {
                panic!("{what}: a second create of a named resource must be refused: {other:?}")
            }
        },
        _ => {}
    }

    for (field, mutate) in mutations(kind) {
        let mut changed = d.clone();
        mutate(&mut changed.spec);
        // Out of band: someone changes the field; the desired spec no longer matches.
        let current = observe_one(p, owner, &d, Some(&created.id)).await.unwrap();
        p.update(&changed, &current)
            .await
            .unwrap_or_else(|e| panic!("{what}: update {field}: {e}"));
        let seen = observe_one(p, owner, &d, Some(&created.id)).await.unwrap();
        assert_eq!(
            diff(&d.node, &changed.spec, &changed.tags, &seen),
            vec![],
            "{what}: {field} updated"
        );
        let drift = diff(&d.node, &d.spec, &d.tags, &seen);
        assert!(
            drift.iter().any(|f| f.field == field),
            "{what}: drift on {field}: {drift:?}"
        );
        // And back.
        p.update(&d, &seen)
            .await
            .unwrap_or_else(|e| panic!("{what}: restore {field}: {e}"));
        let restored = observe_one(p, owner, &d, Some(&created.id)).await.unwrap();
        assert_eq!(
            diff(&d.node, &d.spec, &d.tags, &restored),
            vec![],
            "{what}: {field} restored"
        );
    }
    created
}

async fn delete_contract<P: Provider>(p: &P, backend: &str, owner: &Owner, d: &Desired, id: &str) {
    let what = format!("{backend} {:?}", d.spec.kind());
    p.delete(d.spec.kind(), id)
        .await
        .unwrap_or_else(|e| panic!("{what}: delete: {e}"));
    p.delete(d.spec.kind(), id)
        .await
        .unwrap_or_else(|e| panic!("{what}: delete of the deleted: {e}"));
    let after = observe_one(p, owner, d, Some(id)).await;
    assert!(
        after.is_none_or(|o| o.state == State::Deleting
            || matches!(
                o.spec,
                Spec::KmsKey(KmsKeySpec {
                    pending_deletion: true,
                    ..
                })
            )),
        "{what}: gone"
    );
}

async fn contract<P: Provider>(p: P, backend: &str, quirks: Quirks) {
    let owner = owner(backend);
    let o = &owner;
    let key = kind_contract(
        &p,
        backend,
        quirks,
        o,
        desired(
            o,
            "kms/key",
            Spec::KmsKey(KmsKeySpec {
                description: "contract".into(),
                rotation_enabled: true,
                pending_deletion: false,
            }),
        ),
    )
    .await;
    let key_arn = key.arn.clone().expect("a key ARN");
    let logs_d = desired(
        o,
        "logs",
        Spec::LogGroup(LogGroupSpec {
            name: format!("/hipaa-operator/{}/flow", o.name),
            retention_days: 365,
            kms_key_arn: key_arn.clone(),
        }),
    );
    let logs = kind_contract(&p, backend, quirks, o, logs_d.clone()).await;
    let role_d = desired(
        o,
        "role",
        Spec::IamRole(IamRoleSpec {
            name: format!("hipaa-{}", &o.name[..20.min(o.name.len())]),
            trusted_service: "vpc-flow-logs.amazonaws.com".into(),
            allowed_actions: vec!["logs:CreateLogStream".into(), "logs:PutLogEvents".into()],
        }),
    );
    let role = kind_contract(&p, backend, quirks, o, role_d.clone()).await;
    let vpc_d = desired(
        o,
        "vpc",
        Spec::Vpc(VpcSpec {
            cidr_block: "10.42.0.0/16".into(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
        }),
    );
    let vpc = kind_contract(&p, backend, quirks, o, vpc_d.clone()).await;
    kind_contract(
        &p,
        backend,
        quirks,
        o,
        desired(
            o,
            "vpc/default-sg",
            Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
                vpc_id: vpc.id.clone(),
                ingress: vec![],
                egress: vec![],
            }),
        ),
    )
    .await;
    let public_d = desired(
        o,
        "subnet/public",
        Spec::Subnet(SubnetSpec {
            vpc_id: vpc.id.clone(),
            cidr_block: "10.42.1.0/24".into(),
            availability_zone: "us-east-1a".into(),
            map_public_ip_on_launch: false,
        }),
    );
    let public = kind_contract(&p, backend, quirks, o, public_d.clone()).await;

    // DependencyViolation: the VPC still has a subnet.
    match p.delete(Kind::Vpc, &vpc.id).await {
        Err(e @ CloudError::DependencyViolation { .. }) => {
            assert!(e.retryable(), "{backend}: retryable")
        }
        other => panic!(
            "{backend}: deleting a VPC with a subnet must be a DependencyViolation, got {other:?}"
        ),
    }

    let igw_d = desired(
        o,
        "igw",
        Spec::InternetGateway(InternetGatewaySpec {
            vpc_id: vpc.id.clone(),
        }),
    );
    let igw = kind_contract(&p, backend, quirks, o, igw_d.clone()).await;
    let eip_d = desired(o, "eip", Spec::ElasticIp(ElasticIpSpec {}));
    let eip = kind_contract(&p, backend, quirks, o, eip_d.clone()).await;
    let nat_d = desired(
        o,
        "nat",
        Spec::NatGateway(NatGatewaySpec {
            subnet_id: public.id.clone(),
            allocation_id: eip.id.clone(),
        }),
    );
    let nat = kind_contract(&p, backend, quirks, o, nat_d.clone()).await;
    let rtb_d = desired(
        o,
        "rtb",
        Spec::RouteTable(RouteTableSpec {
            vpc_id: vpc.id.clone(),
            routes: vec![Route {
                destination: "0.0.0.0/0".into(),
                target: nat.id.clone(),
            }],
            subnet_ids: vec![public.id.clone()],
        }),
    );
    let rtb = kind_contract(&p, backend, quirks, o, rtb_d.clone()).await;
    let sg_d = desired(
        o,
        "sg",
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc_id: vpc.id.clone(),
            name: format!("contract-{}", o.name),
            description: "contract".into(),
            ingress: vec![SgRule {
                protocol: "tcp".into(),
                from_port: 22,
                to_port: 22,
                source: "203.0.113.0/24".into(),
            }],
            egress: vec![SgRule {
                protocol: "tcp".into(),
                from_port: 443,
                to_port: 443,
                source: "0.0.0.0/0".into(),
            }],
        }),
    );
    let sg = kind_contract(&p, backend, quirks, o, sg_d.clone()).await;
    let instance_d = desired(
        o,
        "instance",
        Spec::Instance(InstanceSpec {
            subnet_id: public.id.clone(),
            security_group_ids: vec![sg.id.clone()],
            instance_type: "t3.micro".into(),
            image_id: "ami-0123456789abcdef0".into(),
            imds_v2_required: true,
            root_volume_gib: 8,
            root_volume_encrypted: true,
            root_volume_kms_key_arn: key_arn.clone(),
            associate_public_ip: true,
            key_name: String::new(),
        }),
    );
    let instance = kind_contract(&p, backend, quirks, o, instance_d.clone()).await;
    let flow_d = desired(
        o,
        "flow-log",
        Spec::FlowLog(FlowLogSpec {
            vpc_id: vpc.id.clone(),
            log_group_name: logs.id.clone(),
            role_arn: role.arn.clone().expect("a role ARN"),
            traffic_type: "ALL".into(),
        }),
    );
    let flow = kind_contract(&p, backend, quirks, o, flow_d.clone()).await;

    // Tear down in reverse dependency order, waiting out asynchronous deletes.
    delete_contract(&p, backend, o, &flow_d, &flow.id).await;
    delete_contract(&p, backend, o, &instance_d, &instance.id).await;
    delete_contract(&p, backend, o, &rtb_d, &rtb.id).await;
    delete_contract(&p, backend, o, &nat_d, &nat.id).await;
    for (d, id) in [
        (&sg_d, &sg.id),
        (&eip_d, &eip.id),
        (&igw_d, &igw.id),
        (&public_d, &public.id),
        (&vpc_d, &vpc.id),
    ] {
        let mut tries = 0;
        loop {
            match p.delete(d.spec.kind(), id).await {
                Ok(()) => break,
                Err(e) if e.retryable() && tries < 400 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                Err(e) => panic!("{backend} {:?}: {e}", d.spec.kind()),
            }
        }
        delete_contract(&p, backend, o, d, id).await;
    }
    delete_contract(&p, backend, o, &role_d, &role.id).await;
    delete_contract(&p, backend, o, &logs_d, &logs.id).await;
    p.delete(Kind::KmsKey, &key.id).await.unwrap();
    assert!(
        p.owned(o).await.unwrap().is_empty(),
        "{backend}: nothing tagged with the owner is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_the_simulated_aws() {
    contract(
        SimCloud::new(SimConfig {
            time_scale: 0.0005,
            ..SimConfig::default()
        }),
        "sim",
        AWS,
    )
    .await;
}

/// moto's endpoint, required.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect("moto is required: run the tests through .ci/with-moto, which starts moto's server and sets MOTO_ENDPOINT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_moto() {
    let config = sdk_config("us-east-1", Some(&moto_endpoint())).await;
    contract(AwsCloud::new(&config, "us-east-1"), "moto", MOTO).await;
}
