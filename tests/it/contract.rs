//! One contract, two backends: every resource kind behaves alike on the simulated AWS
//! and on moto's server (real AWS APIs, through the AWS SDK). For every kind: create,
//! observe by id, observe by tags when the id is unknown, idempotent create, update of
//! each managed field, an out-of-band change detected as drift, delete, delete of the
//! already deleted, and DependencyViolation surfaced as retryable.
//!
//! The contract runs every kind of `Kind::ALL`, in that (dependency) order, each from its
//! [`case`]: an exhaustive match, so a kind without a case does not compile. What a
//! retried create does and how a kind deletes come from the kind registry.
//!
//! What no kind makes comes from [`Fixtures`]: the Lambda functions' code (two `s3://`
//! sources with different contents) and the queue the event source mapping polls (the
//! simulator accepts any; on moto the contract uploads the objects and creates the queue
//! first), and two execution roles trusting Lambda (made through the provider, as
//! `IamRole`s, and deleted at the end).
//!
//! moto is required: `.ci/with-moto` starts it and sets `MOTO_ENDPOINT`; without it the
//! moto half fails (it never skips silently).

use std::collections::{BTreeMap, BTreeSet};

use hipaa_operator::cloud::aws::{AwsCloud, sdk_config};
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{
    CloudError, DefaultSecurityGroupSpec, DeleteMode, Desired, DynamoDbTableSpec, ElasticIpSpec,
    EventSourceMappingSpec, FlowLogSpec, IamRoleSpec, Idempotency, InstanceSpec,
    InternetGatewaySpec, Kind, KindSpec, KmsKeySpec, LambdaFunctionSpec, LogGroupSpec, Lookup,
    NatGatewaySpec, Observed, Owner, PolicyStatement, Provider, Route, RouteTableSpec, STREAMS_ARN,
    SecurityGroupSpec, SgRule, SnsTopicSpec, Spec, SqsQueueSpec, State, SubnetSpec, VpcSpec,
    normalized_statements, ownership_tags,
};
use hipaa_operator::engine::diff::diff;

use crate::common;

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

/// A change of one managed field, for the update and drift checks.
struct Mutation {
    field: &'static str,
    apply: Box<dyn Fn(&mut Spec)>,
}

/// A change of `field` of a `T` spec.
fn change<T: KindSpec + 'static>(field: &'static str, apply: fn(&mut T)) -> Mutation {
    Mutation {
        field,
        apply: Box::new(move |spec| apply(T::of_mut(spec).expect("a spec of the case's kind"))),
    }
}

/// What the kinds before the current one created, by kind, and the current kind's
/// helpers, by node.
#[derive(Default)]
struct Made(BTreeMap<Kind, Observed>, BTreeMap<&'static str, Observed>);

impl Made {
    /// The ARN of a helper of the current kind (see [`helpers`]).
    fn helper_arn(&self, node: &str) -> String {
        self.1
            .get(node)
            .and_then(|o| o.arn.clone())
            .unwrap_or_else(|| panic!("helper {node} comes first, with an ARN"))
    }

    fn id(&self, kind: Kind) -> String {
        self.0
            .get(&kind)
            .unwrap_or_else(|| panic!("{kind:?} comes first"))
            .id
            .clone()
    }

    fn arn(&self, kind: Kind) -> String {
        self.0
            .get(&kind)
            .and_then(|o| o.arn.clone())
            .unwrap_or_else(|| panic!("{kind:?} comes first, with an ARN"))
    }
}

/// What the cases need that no kind of the registry makes.
#[derive(Clone, Debug)]
struct Fixtures {
    /// Two code sources with different contents (`s3://bucket/key`).
    code: [String; 2],
    /// The SQS queue the event source mapping polls.
    queue_arn: String,
    /// Two roles Lambda can assume: the function's, and the one a mutation switches to.
    execution_role: String,
    spare_role: String,
}

/// One kind's part of the contract.
struct Case {
    node: &'static str,
    spec: Spec,
    /// Managed fields AWS changes in place, each changed and restored.
    mutations: Vec<Mutation>,
}

/// Resources of a kind that its case refers to besides those of earlier kinds (an SQS
/// queue's dead-letter queue), as `(node, spec)`: created before the case without its
/// checks, deleted after it. Exhaustive like [`case`].
fn helpers(kind: Kind, owner: &Owner, made: &Made) -> Vec<(&'static str, Spec)> {
    match kind {
        Kind::SqsQueue => vec![(
            "sqs/dlq",
            Spec::SqsQueue(SqsQueueSpec {
                name: format!("hipaa-{}-dlq", owner.name),
                kms_master_key_id: made.arn(Kind::KmsKey),
                message_retention_seconds: 1_209_600,
                visibility_timeout_seconds: 30,
                ..SqsQueueSpec::default()
            }),
        )],
        Kind::KmsKey
        | Kind::LogGroup
        | Kind::IamRole
        | Kind::Vpc
        | Kind::DefaultSecurityGroup
        | Kind::Subnet
        | Kind::InternetGateway
        | Kind::ElasticIp
        | Kind::NatGateway
        | Kind::RouteTable
        | Kind::SecurityGroup
        | Kind::Instance
        | Kind::FlowLog
        | Kind::SnsTopic
        | Kind::DynamoDbTable
        | Kind::LambdaFunction
        | Kind::EventSourceMapping => vec![],
    }
}

/// Every kind's case, built from what the kinds before it created. Exhaustive: adding a
/// kind without its case here does not compile.
fn case(kind: Kind, owner: &Owner, made: &Made, fixtures: &Fixtures) -> Case {
    let rule = |protocol: &str, port: i32, source: &str| SgRule {
        protocol: protocol.into(),
        from_port: port,
        to_port: port,
        source: source.into(),
    };
    match kind {
        Kind::KmsKey => Case {
            node: "kms/key",
            spec: Spec::KmsKey(KmsKeySpec {
                description: "contract".into(),
                rotation_enabled: true,
                service_principals: vec!["logs.us-east-1.amazonaws.com".into()],
                pending_deletion: false,
            }),
            mutations: vec![
                change("rotationEnabled", |k: &mut KmsKeySpec| {
                    k.rotation_enabled = false
                }),
                change("servicePrincipals", |k: &mut KmsKeySpec| {
                    k.service_principals.push("sns.amazonaws.com".into())
                }),
            ],
        },
        Kind::LogGroup => Case {
            node: "logs",
            spec: Spec::LogGroup(LogGroupSpec {
                name: format!("/hipaa-operator/{}/flow", owner.name),
                retention_days: 365,
                kms_key_arn: made.arn(Kind::KmsKey),
            }),
            mutations: vec![change("retentionDays", |g: &mut LogGroupSpec| {
                g.retention_days = 30
            })],
        },
        Kind::IamRole => Case {
            node: "role",
            spec: Spec::IamRole(IamRoleSpec {
                name: format!("hipaa-{}", &owner.name[..20.min(owner.name.len())]),
                trusted_service: "vpc-flow-logs.amazonaws.com".into(),
                statements: vec![PolicyStatement::new(
                    &["logs:CreateLogStream", "logs:PutLogEvents"],
                    &[made
                        .0
                        .get(&Kind::LogGroup)
                        .and_then(|g| g.attributes.get(STREAMS_ARN).cloned())
                        .unwrap_or_default()],
                )],
            }),
            // Another action on the same resources, and a second statement on another.
            mutations: vec![change("statements", |r: &mut IamRoleSpec| {
                r.statements[0]
                    .actions
                    .push("logs:DescribeLogStreams".into());
                r.statements.push(PolicyStatement::new(
                    &["kms:Decrypt"],
                    &["arn:aws:kms:us-east-1:123456789012:key/x"],
                ));
                r.statements = normalized_statements(&r.statements);
            })],
        },
        Kind::Vpc => Case {
            node: "vpc",
            spec: Spec::Vpc(VpcSpec {
                cidr_block: "10.42.0.0/16".into(),
                enable_dns_support: true,
                enable_dns_hostnames: true,
            }),
            mutations: vec![change("enableDnsHostnames", |v: &mut VpcSpec| {
                v.enable_dns_hostnames = !v.enable_dns_hostnames
            })],
        },
        Kind::DefaultSecurityGroup => Case {
            node: "vpc/default-sg",
            spec: Spec::DefaultSecurityGroup(DefaultSecurityGroupSpec {
                vpc_id: made.id(Kind::Vpc),
                ingress: vec![],
                egress: vec![],
            }),
            mutations: vec![change("ingress", |g: &mut DefaultSecurityGroupSpec| {
                g.ingress.push(SgRule::tcp(22, 22, "0.0.0.0/0"))
            })],
        },
        Kind::Subnet => Case {
            node: "subnet/public",
            spec: Spec::Subnet(SubnetSpec {
                vpc_id: made.id(Kind::Vpc),
                cidr_block: "10.42.1.0/24".into(),
                availability_zone: "us-east-1a".into(),
                map_public_ip_on_launch: false,
            }),
            mutations: vec![change("mapPublicIpOnLaunch", |s: &mut SubnetSpec| {
                s.map_public_ip_on_launch = true
            })],
        },
        Kind::InternetGateway => Case {
            node: "igw",
            spec: Spec::InternetGateway(InternetGatewaySpec {
                vpc_id: made.id(Kind::Vpc),
            }),
            mutations: vec![change("vpcId", |g: &mut InternetGatewaySpec| {
                g.vpc_id.clear()
            })],
        },
        // Nothing to change in place: an Elastic IP has no field, a NAT gateway's and a
        // flow log's are all immutable.
        Kind::ElasticIp => Case {
            node: "eip",
            spec: Spec::ElasticIp(ElasticIpSpec {}),
            mutations: vec![],
        },
        Kind::NatGateway => Case {
            node: "nat",
            spec: Spec::NatGateway(NatGatewaySpec {
                subnet_id: made.id(Kind::Subnet),
                allocation_id: made.id(Kind::ElasticIp),
            }),
            mutations: vec![],
        },
        Kind::RouteTable => Case {
            node: "rtb",
            spec: Spec::RouteTable(RouteTableSpec {
                vpc_id: made.id(Kind::Vpc),
                routes: vec![Route {
                    destination: "0.0.0.0/0".into(),
                    target: made.id(Kind::NatGateway),
                }],
                subnet_ids: vec![made.id(Kind::Subnet)],
            }),
            mutations: vec![
                change("routes", |t: &mut RouteTableSpec| t.routes.clear()),
                change("subnetIds", |t: &mut RouteTableSpec| t.subnet_ids.clear()),
            ],
        },
        Kind::SecurityGroup => Case {
            node: "sg",
            spec: Spec::SecurityGroup(SecurityGroupSpec {
                vpc_id: made.id(Kind::Vpc),
                name: format!("contract-{}", owner.name),
                description: "contract".into(),
                ingress: vec![rule("tcp", 22, "203.0.113.0/24")],
                egress: vec![rule("tcp", 443, "0.0.0.0/0")],
            }),
            mutations: vec![change("ingress", |g: &mut SecurityGroupSpec| {
                g.ingress.push(SgRule::tcp(443, 443, "198.51.100.0/24"))
            })],
        },
        Kind::Instance => Case {
            node: "instance",
            spec: Spec::Instance(InstanceSpec {
                subnet_id: made.id(Kind::Subnet),
                security_group_ids: vec![made.id(Kind::SecurityGroup)],
                instance_type: "t3.micro".into(),
                image_id: "ami-0123456789abcdef0".into(),
                imds_v2_required: true,
                root_volume_gib: 8,
                root_volume_encrypted: true,
                root_volume_kms_key_arn: made.arn(Kind::KmsKey),
                associate_public_ip: true,
                key_name: String::new(),
            }),
            mutations: vec![change("imdsV2Required", |i: &mut InstanceSpec| {
                i.imds_v2_required = false
            })],
        },
        Kind::FlowLog => Case {
            node: "flow-log",
            spec: Spec::FlowLog(FlowLogSpec {
                vpc_id: made.id(Kind::Vpc),
                log_group_name: made.id(Kind::LogGroup),
                role_arn: made.arn(Kind::IamRole),
                traffic_type: "ALL".into(),
            }),
            mutations: vec![],
        },
        Kind::SnsTopic => Case {
            node: "sns/topic",
            spec: Spec::SnsTopic(SnsTopicSpec {
                name: format!("hipaa-{}", owner.name),
                display_name: "contract".into(),
                kms_master_key_id: made.arn(Kind::KmsKey),
                account_only_policy: true,
            }),
            mutations: vec![
                change("displayName", |t: &mut SnsTopicSpec| {
                    t.display_name = "changed".into()
                }),
                change("kmsMasterKeyId", |t: &mut SnsTopicSpec| {
                    t.kms_master_key_id = "alias/aws/sns".into()
                }),
                change("accountOnlyPolicy", |t: &mut SnsTopicSpec| {
                    t.account_only_policy = false
                }),
            ],
        },
        Kind::SqsQueue => Case {
            node: "sqs/queue",
            spec: Spec::SqsQueue(SqsQueueSpec {
                name: format!("hipaa-{}", owner.name),
                kms_master_key_id: made.arn(Kind::KmsKey),
                message_retention_seconds: 345_600,
                visibility_timeout_seconds: 60,
                dead_letter_target_arn: made.helper_arn("sqs/dlq"),
                max_receive_count: 5,
                send_allowed_from_topic_arn: made.arn(Kind::SnsTopic),
                subscribed_topic_arn: made.arn(Kind::SnsTopic),
            }),
            mutations: vec![
                change("kmsMasterKeyId", |q: &mut SqsQueueSpec| {
                    q.kms_master_key_id = "alias/aws/sqs".into()
                }),
                change("messageRetentionSeconds", |q: &mut SqsQueueSpec| {
                    q.message_retention_seconds = 86_400
                }),
                change("visibilityTimeoutSeconds", |q: &mut SqsQueueSpec| {
                    q.visibility_timeout_seconds = 120
                }),
                change("deadLetterTargetArn", |q: &mut SqsQueueSpec| {
                    q.dead_letter_target_arn.clear();
                    q.max_receive_count = 0;
                }),
                change("maxReceiveCount", |q: &mut SqsQueueSpec| {
                    q.max_receive_count = 10
                }),
                change("sendAllowedFromTopicArn", |q: &mut SqsQueueSpec| {
                    q.send_allowed_from_topic_arn.clear()
                }),
                change("subscribedTopicArn", |q: &mut SqsQueueSpec| {
                    q.subscribed_topic_arn.clear()
                }),
            ],
        },
        Kind::DynamoDbTable => Case {
            node: "dynamodb/table",
            spec: Spec::DynamoDbTable(DynamoDbTableSpec {
                name: format!("hipaa-{}", owner.name),
                partition_key: "paymentId:S".into(),
                sort_key: "createdAt:N".into(),
                billing_mode: "PROVISIONED".into(),
                read_capacity_units: 5,
                write_capacity_units: 5,
                kms_key_arn: made.arn(Kind::KmsKey),
                point_in_time_recovery: true,
                deletion_protection: true,
                ttl_attribute: "expiresAt".into(),
            }),
            mutations: vec![
                change("billingMode", |t: &mut DynamoDbTableSpec| {
                    t.billing_mode = "PAY_PER_REQUEST".into();
                    t.read_capacity_units = 0;
                    t.write_capacity_units = 0;
                }),
                change("readCapacityUnits", |t: &mut DynamoDbTableSpec| {
                    t.read_capacity_units = 10
                }),
                change("writeCapacityUnits", |t: &mut DynamoDbTableSpec| {
                    t.write_capacity_units = 10
                }),
                change("kmsKeyArn", |t: &mut DynamoDbTableSpec| {
                    t.kms_key_arn.clear()
                }),
                change("pointInTimeRecovery", |t: &mut DynamoDbTableSpec| {
                    t.point_in_time_recovery = false
                }),
                change("deletionProtection", |t: &mut DynamoDbTableSpec| {
                    t.deletion_protection = false
                }),
                change("ttlAttribute", |t: &mut DynamoDbTableSpec| {
                    t.ttl_attribute.clear()
                }),
            ],
        },
        // Every mutable field is changed, the code to another source and the VPC
        // configuration out of the VPC and to another group.
        Kind::LambdaFunction => Case {
            node: "function/poller",
            spec: Spec::LambdaFunction(LambdaFunctionSpec {
                name: function_name(owner),
                role_arn: fixtures.execution_role.clone(),
                runtime: "python3.12".into(),
                handler: "app.handler".into(),
                architecture: "x86_64".into(),
                memory_mib: 256,
                timeout_seconds: 30,
                reserved_concurrency: 5,
                subnet_ids: vec![made.id(Kind::Subnet)],
                security_group_ids: vec![made.id(Kind::SecurityGroup)],
                environment: BTreeMap::from([
                    ("TABLE".to_string(), "payments".to_string()),
                    ("LOG_LEVEL".to_string(), "info".to_string()),
                ]),
                kms_key_arn: made.arn(Kind::KmsKey),
                tracing_mode: "Active".into(),
                code: fixtures.code[0].clone(),
            }),
            mutations: {
                let spare_role = fixtures.spare_role.clone();
                let other_code = fixtures.code[1].clone();
                let default_group = made.id(Kind::DefaultSecurityGroup);
                vec![
                    Mutation {
                        field: "roleArn",
                        apply: Box::new(move |spec| function(spec).role_arn = spare_role.clone()),
                    },
                    change("runtime", |f: &mut LambdaFunctionSpec| {
                        f.runtime = "python3.13".into()
                    }),
                    change("handler", |f: &mut LambdaFunctionSpec| {
                        f.handler = "app.other_handler".into()
                    }),
                    change("architecture", |f: &mut LambdaFunctionSpec| {
                        f.architecture = "arm64".into()
                    }),
                    change("memoryMib", |f: &mut LambdaFunctionSpec| f.memory_mib = 512),
                    change("timeoutSeconds", |f: &mut LambdaFunctionSpec| {
                        f.timeout_seconds = 60
                    }),
                    change("reservedConcurrency", |f: &mut LambdaFunctionSpec| {
                        f.reserved_concurrency = 0
                    }),
                    change("subnetIds", |f: &mut LambdaFunctionSpec| {
                        f.subnet_ids.clear();
                        f.security_group_ids.clear();
                    }),
                    Mutation {
                        field: "securityGroupIds",
                        apply: Box::new(move |spec| {
                            function(spec).security_group_ids = vec![default_group.clone()]
                        }),
                    },
                    change("environment", |f: &mut LambdaFunctionSpec| {
                        f.environment.insert("FEATURE".into(), "on".into());
                    }),
                    change("kmsKeyArn", |f: &mut LambdaFunctionSpec| {
                        f.kms_key_arn.clear()
                    }),
                    change("tracingMode", |f: &mut LambdaFunctionSpec| {
                        f.tracing_mode = "PassThrough".into()
                    }),
                    Mutation {
                        field: "code",
                        apply: Box::new(move |spec| function(spec).code = other_code.clone()),
                    },
                ]
            },
        },
        Kind::EventSourceMapping => Case {
            node: "function/poller/queue",
            spec: Spec::EventSourceMapping(EventSourceMappingSpec {
                function_name: made.id(Kind::LambdaFunction),
                event_source_arn: fixtures.queue_arn.clone(),
                batch_size: 10,
                maximum_batching_window_seconds: 0,
                enabled: true,
                report_batch_item_failures: true,
            }),
            mutations: vec![
                change("batchSize", |m: &mut EventSourceMappingSpec| {
                    m.batch_size = 5
                }),
                change(
                    "maximumBatchingWindowSeconds",
                    |m: &mut EventSourceMappingSpec| m.maximum_batching_window_seconds = 5,
                ),
                change("enabled", |m: &mut EventSourceMappingSpec| {
                    m.enabled = false
                }),
                change(
                    "reportBatchItemFailures",
                    |m: &mut EventSourceMappingSpec| m.report_batch_item_failures = false,
                ),
            ],
        },
    }
}

/// The Lambda function spec inside `spec`.
fn function(spec: &mut Spec) -> &mut LambdaFunctionSpec {
    LambdaFunctionSpec::of_mut(spec).expect("a Lambda function")
}

/// The contract's function name (`hipaa-…`, the prefix the operator's functions have).
fn function_name(owner: &Owner) -> String {
    format!("hipaa-{}-poller", &owner.name[..20.min(owner.name.len())])
}

/// What a backend does differently from AWS (the simulator follows AWS in everything).
#[derive(Clone, Copy)]
struct Quirks {
    /// moto ignores ClientToken on CreateNatGateway, CreateRouteTable, RunInstances and
    /// CreateFlowLogs: a repeated create makes a second resource (or fails: a NAT gateway
    /// on the Elastic IP it already holds, a flow log with FlowLogAlreadyExists). The
    /// engine does not rely on tokens alone: before retrying a create it looks the
    /// resource up by its ownership tags.
    ignores_client_tokens: bool,
    /// moto makes a second event source mapping for the same function and queue (AWS
    /// refuses it with ResourceConflictException).
    duplicates_event_source_mappings: bool,
    /// Fields of a kind whose update moto accepts and ignores: UpdateFunctionConfiguration
    /// leaves KMSKeyArn and TracingConfig, UpdateFunctionCode Architectures, UpdateTable
    /// SSESpecification as they were. Their mutations run on the simulator only.
    ignored_updates: &'static [(Kind, &'static str)],
}

const AWS: Quirks = Quirks {
    ignores_client_tokens: false,
    duplicates_event_source_mappings: false,
    ignored_updates: &[],
};
const MOTO: Quirks = Quirks {
    ignores_client_tokens: true,
    duplicates_event_source_mappings: true,
    ignored_updates: &[
        (Kind::LambdaFunction, "kmsKeyArn"),
        (Kind::LambdaFunction, "tracingMode"),
        (Kind::LambdaFunction, "architecture"),
        (Kind::DynamoDbTable, "kmsKeyArn"),
    ],
};

/// An update retried while it fails retryably (a DynamoDB table's second TimeToLive
/// change within the hour, which the simulator scales by its time scale), up to 10 s.
async fn update_retrying<P: Provider>(
    p: &P,
    d: &Desired,
    observed: &Observed,
) -> Result<Observed, CloudError> {
    let mut tries = 0;
    loop {
        match p.update(d, observed).await {
            Err(e) if e.retryable() && tries < 400 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
}

/// Runs the contract for one kind: returns the created resource (left in place for
/// dependents).
async fn kind_contract<P: Provider>(
    p: &P,
    backend: &str,
    quirks: Quirks,
    owner: &Owner,
    d: &Desired,
    mutations: &[Mutation],
) -> Observed {
    let kind = d.spec.kind();
    let what = format!("{backend} {kind:?}");
    let created = p
        .create(d)
        .await
        .unwrap_or_else(|e| panic!("{what}: create: {e}"));
    assert!(!created.id.is_empty(), "{what}: an id");
    let created = if created.state == State::Pending {
        let available = available(p, owner, d, &created.id).await;
        // Some settings AWS applies only to an available resource (a DynamoDB table's
        // point-in-time recovery and TTL): as in the engine, the first update once it is
        // available completes the create.
        if diff(&d.node, &d.spec, &d.tags, &available).is_empty() {
            available
        } else {
            update_retrying(p, d, &available)
                .await
                .unwrap_or_else(|e| panic!("{what}: completing the create: {e}"))
        }
    } else {
        created
    };
    let by_id = observe_one(p, owner, d, Some(&created.id))
        .await
        .unwrap_or_else(|| panic!("{what}: observe by id"));
    assert_eq!(by_id.id, created.id, "{what}: observe by id");
    assert_eq!(
        diff(&d.node, &d.spec, &d.tags, &by_id),
        vec![],
        "{what}: observed as desired"
    );
    let by_tags = observe_one(p, owner, d, None)
        .await
        .unwrap_or_else(|| panic!("{what}: observe by tags"));
    assert_eq!(
        by_tags.id, created.id,
        "{what}: observe by tags finds the same resource"
    );

    // A second create, as the kind registry says it goes.
    match kind.info().idempotency {
        Idempotency::ClientToken if quirks.ignores_client_tokens => {}
        Idempotency::ClientToken | Idempotency::Adopted | Idempotency::SameRequest => {
            let again = p
                .create(d)
                .await
                .unwrap_or_else(|e| panic!("{what}: retried create: {e}"));
            assert_eq!(
                again.id, created.id,
                "{what}: the client token (the adoption, the same request) returns the first"
            );
        }
        Idempotency::UniqueName
            if kind == Kind::EventSourceMapping && quirks.duplicates_event_source_mappings =>
        {
            if let Ok(second) = p.create(d).await {
                eprintln!("{what}: moto made a second mapping for the same function and queue");
                p.delete(kind, &second.id)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: delete the duplicate: {e}"));
            }
        }
        Idempotency::UniqueName => match p.create(d).await {
            Err(e @ CloudError::Terminal { .. }) => {
                assert!(e.already_exists(), "{what}: {e}")
            }
            other => {
                panic!("{what}: a second create of a named resource must be refused: {other:?}")
            }
        },
        // A second resource: nothing to check that would not leave it behind.
        Idempotency::Duplicates => {}
    }

    for Mutation { field, apply } in mutations {
        if quirks.ignored_updates.contains(&(kind, *field)) {
            eprintln!("{what}: {field}: the backend ignores its update (see Quirks)");
            continue;
        }
        let mut changed = d.clone();
        apply(&mut changed.spec);
        // Out of band: someone changes the field; the desired spec no longer matches.
        let current = observe_one(p, owner, d, Some(&created.id)).await.unwrap();
        update_retrying(p, &changed, &current)
            .await
            .unwrap_or_else(|e| panic!("{what}: update {field}: {e}"));
        // An update may leave the resource busy for a while (a Lambda function's
        // LastUpdateStatus InProgress, a mapping Updating): Pending, as after a create.
        let seen = available(p, owner, &changed, &created.id).await;
        assert_eq!(
            diff(&d.node, &changed.spec, &changed.tags, &seen),
            vec![],
            "{what}: {field} updated"
        );
        let drift = diff(&d.node, &d.spec, &d.tags, &seen);
        assert!(
            drift.iter().any(|f| f.field == *field),
            "{what}: drift on {field}: {drift:?}"
        );
        // And back.
        update_retrying(p, d, &seen)
            .await
            .unwrap_or_else(|e| panic!("{what}: restore {field}: {e}"));
        let restored = available(p, owner, d, &created.id).await;
        assert_eq!(
            diff(&d.node, &d.spec, &d.tags, &restored),
            vec![],
            "{what}: {field} restored"
        );
    }
    created
}

/// Deletes (retrying while dependents are still going), deletes again, and checks the
/// resource is gone (or going: deleting, a KMS key pending deletion).
async fn delete_contract<P: Provider>(p: &P, backend: &str, owner: &Owner, d: &Desired, id: &str) {
    let kind = d.spec.kind();
    let what = format!("{backend} {kind:?}");
    let mut tries = 0;
    loop {
        match p.delete(kind, id).await {
            Ok(()) => break,
            Err(e) if e.retryable() && tries < 400 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            Err(e) => panic!("{what}: delete: {e}"),
        }
    }
    p.delete(kind, id)
        .await
        .unwrap_or_else(|e| panic!("{what}: delete of the deleted: {e}"));
    if kind.info().deletion == DeleteMode::WithParent {
        // A no-op: it goes with its parent, deleted after it.
        return;
    }
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

/// Two roles Lambda can assume, made through the provider (tagged with the owner, so
/// `owned` lists them until [`contract`] deletes them).
async fn lambda_roles<P: Provider>(p: &P, owner: &Owner) -> Vec<(Desired, Observed)> {
    let mut out = Vec::new();
    for suffix in ["exec", "spare"] {
        let d = desired(
            owner,
            &format!("role/lambda-{suffix}"),
            Spec::IamRole(IamRoleSpec {
                name: format!("hipaa-{}-{suffix}", &owner.name[..20.min(owner.name.len())]),
                trusted_service: "lambda.amazonaws.com".into(),
                statements: vec![PolicyStatement::new(&["logs:PutLogEvents"], &["*"])],
            }),
        );
        let role = p
            .create(&d)
            .await
            .unwrap_or_else(|e| panic!("the Lambda role {suffix}: {e}"));
        out.push((d, role));
    }
    out
}

/// `code` and `queue_arn` of the fixtures; the roles are made here.
async fn contract<P: Provider>(
    p: &P,
    backend: &str,
    quirks: Quirks,
    owner: Owner,
    code: [String; 2],
    queue_arn: String,
) {
    let o = &owner;
    let roles = lambda_roles(p, o).await;
    let fixtures = Fixtures {
        code,
        queue_arn,
        execution_role: roles[0].1.arn.clone().expect("a role ARN"),
        spare_role: roles[1].1.arn.clone().expect("a role ARN"),
    };
    let mut made = Made::default();
    let mut created = Vec::new();
    for kind in Kind::ALL {
        made.1.clear();
        for (node, spec) in helpers(kind, o, &made) {
            let d = desired(o, node, spec);
            let helper = p
                .create(&d)
                .await
                .unwrap_or_else(|e| panic!("{backend}: helper {node}: {e}"));
            let helper = if helper.state == State::Pending {
                available(p, o, &d, &helper.id).await
            } else {
                helper
            };
            created.push((d, helper.id.clone()));
            made.1.insert(node, helper);
        }
        let Case {
            node,
            spec,
            mutations,
        } = case(kind, o, &made, &fixtures);
        let d = desired(o, node, spec);
        let resource = kind_contract(p, backend, quirks, o, &d, &mutations).await;
        if kind == Kind::Subnet {
            // DependencyViolation: the VPC still has a subnet.
            match p.delete(Kind::Vpc, &made.id(Kind::Vpc)).await {
                Err(e @ CloudError::DependencyViolation { .. }) => {
                    assert!(e.retryable(), "{backend}: retryable")
                }
                other => panic!(
                    "{backend}: deleting a VPC with a subnet must be a DependencyViolation, got {other:?}"
                ),
            }
        }
        created.push((d, resource.id.clone()));
        made.0.insert(kind, resource);
    }
    assert_eq!(
        made.0.keys().copied().collect::<Vec<_>>(),
        Kind::ALL,
        "{backend}: every kind ran"
    );

    // Tear down in reverse dependency order, waiting out asynchronous deletes.
    for (d, id) in created.iter().rev() {
        delete_contract(p, backend, o, d, id).await;
    }
    for (d, role) in &roles {
        delete_contract(p, backend, o, d, &role.id).await;
    }
    assert!(
        p.owned(o).await.unwrap().is_empty(),
        "{backend}: nothing tagged with the owner is left"
    );
}

/// Without a backend: every kind's case is of its kind, needs only kinds before it, and
/// changes exactly fields AWS can change in place — at least one when the kind has any.
#[test]
fn every_kind_has_a_case_that_changes_its_mutable_fields() {
    let owner = owner("cases");
    let fixtures = Fixtures {
        code: ["s3://code/a.zip".into(), "s3://code/b.zip".into()],
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:q".into(),
        execution_role: "arn:aws:iam::123456789012:role/hipaa-exec".into(),
        spare_role: "arn:aws:iam::123456789012:role/hipaa-spare".into(),
    };
    let mut made = Made::default();
    let mut nodes = BTreeSet::new();
    for kind in Kind::ALL {
        made.1.clear();
        for (node, spec) in helpers(kind, &owner, &made) {
            assert!(nodes.insert(node), "{kind:?}: helper node {node} unique");
            let helper = Observed {
                id: format!("{node}-id"),
                arn: Some(format!("arn:{node}")),
                state: State::Available,
                spec,
                tags: Default::default(),
                attributes: Default::default(),
            };
            made.1.insert(node, helper);
        }
        let case = case(kind, &owner, &made, &fixtures);
        assert_eq!(case.spec.kind(), kind, "{kind:?}: its own kind");
        assert!(
            nodes.insert(case.node),
            "{kind:?}: node {} unique",
            case.node
        );
        let mutable: Vec<String> = case
            .spec
            .fields()
            .into_iter()
            .map(|(field, _)| field)
            .filter(|field| !kind.info().immutable.contains(&field.as_str()))
            .collect();
        for mutation in &case.mutations {
            assert!(
                mutable.iter().any(|f| f == mutation.field),
                "{kind:?}: {} is a mutable field ({mutable:?})",
                mutation.field
            );
            let mut changed = case.spec.clone();
            (mutation.apply)(&mut changed);
            assert_ne!(
                changed.field(mutation.field),
                case.spec.field(mutation.field),
                "{kind:?}: the mutation changes {}",
                mutation.field
            );
        }
        assert_eq!(
            case.mutations.is_empty(),
            mutable.is_empty(),
            "{kind:?}: updates a mutable field when it has one ({mutable:?})"
        );
        if matches!(kind, Kind::LambdaFunction | Kind::EventSourceMapping) {
            // The Lambda kinds change every mutable field, one mutation each.
            let changed: BTreeSet<&str> = case.mutations.iter().map(|m| m.field).collect();
            let mutable: BTreeSet<&str> = mutable.iter().map(String::as_str).collect();
            assert_eq!(changed, mutable, "{kind:?}: every mutable field");
            assert_eq!(changed.len(), case.mutations.len(), "{kind:?}: one each");
        }
        let resource = Observed {
            id: format!("{kind:?}-id"),
            arn: Some(format!("arn:{kind:?}")),
            state: State::Available,
            spec: case.spec,
            tags: Default::default(),
            attributes: Default::default(),
        };
        made.0.insert(kind, resource);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_the_simulated_aws() {
    let owner = owner("sim");
    // The simulator has no S3 or SQS: any source and queue of the account will do.
    let code = ["a", "b"].map(|k| format!("s3://hipaa-contract-code/{}/{k}.zip", owner.name));
    let queue = format!("arn:aws:sqs:us-east-1:123456789012:hipaa-{}", owner.name);
    contract(
        &SimCloud::new(SimConfig {
            time_scale: 0.0005,
            ..SimConfig::default()
        }),
        "sim",
        AWS,
        owner,
        code,
        queue,
    )
    .await;
}

/// An empty zip archive (its end-of-central-directory record) with `comment`: a valid
/// deployment package whose contents (so CodeSha256) differ by comment.
pub fn empty_zip(comment: &str) -> Vec<u8> {
    let mut zip = vec![0x50, 0x4b, 0x05, 0x06];
    zip.extend([0u8; 16]);
    zip.extend((comment.len() as u16).to_le_bytes());
    zip.extend(comment.as_bytes());
    zip
}

/// On moto: a bucket with two different code zips, and an SQS queue (no kind makes
/// either). Returns the two `s3://` sources and the queue's ARN.
fn moto_fixtures(endpoint: &str, owner: &Owner) -> ([String; 2], String) {
    use common::moto::request;
    let bucket = format!("hipaa-contract-{}", &owner.name[..20.min(owner.name.len())]);
    let (status, body) = request(
        endpoint,
        "s3",
        "PUT",
        &format!("/{bucket}"),
        "text/plain",
        b"",
    );
    assert_eq!(status, 200, "CreateBucket: {body}");
    let code = ["a", "b"].map(|key| {
        let path = format!("/{bucket}/{key}.zip");
        let (status, body) = request(
            endpoint,
            "s3",
            "PUT",
            &path,
            "application/zip",
            &empty_zip(key),
        );
        assert_eq!(status, 200, "PutObject {path}: {body}");
        format!("s3://{bucket}/{key}.zip")
    });
    let queue = format!("hipaa-contract-{}", owner.name);
    let (status, body) = request(
        endpoint,
        "sqs",
        "POST",
        "/",
        "application/x-www-form-urlencoded",
        format!("Action=CreateQueue&QueueName={queue}&Version=2012-11-05").as_bytes(),
    );
    assert_eq!(status, 200, "CreateQueue: {body}");
    (code, format!("arn:aws:sqs:us-east-1:123456789012:{queue}"))
}

/// moto's endpoint, required.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect("moto is required: run the tests through .ci/with-moto, which starts moto's server and sets MOTO_ENDPOINT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_moto() {
    let _moto = common::moto_shared().await;
    let config = sdk_config("us-east-1", Some(&moto_endpoint())).await;
    let cloud = AwsCloud::new(&config, "us-east-1");
    let owner = owner("moto");
    let (code, queue) = moto_fixtures(&moto_endpoint(), &owner);
    contract(&cloud, "moto", MOTO, owner, code, queue).await;
    // Every call of every kind's verbs (each managed field updated) is one the generated
    // IAM policy allows; these counts equal moto's log (aws_network's tests).
    let calls = cloud.calls();
    let checked = common::iam::assert_allows_all(
        &common::iam::operator_policy(),
        calls.keys().map(|(s, o, _)| (s.as_str(), o.as_str())),
        "the contract on moto",
    );
    assert!(checked > 50, "{checked} calls checked");
}
