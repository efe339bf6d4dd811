//! PaymentPipeline -> its AWS resources: a customer KMS key for the pipeline's data, the
//! SNS topic the payment function publishes to, the SQS queue (and its dead-letter queue)
//! subscribed to it, the DynamoDB table the poller writes, one least-privilege role and
//! one log group per function, a security group for the functions in the network's VPC,
//! the two functions in the network's private subnets, and the queue's event source
//! mapping to the poller.
//!
//! Every HIPAA default is applied here, not left to the spec: encryption with the key
//! everywhere, the topic admitting only the account, the queue admitting only the topic,
//! PITR and deletion protection on the table, X-Ray tracing and reserved concurrency on
//! the functions, roles that name the resources they act on.

use std::collections::{BTreeMap, BTreeSet};

use super::network::resource_name;
use super::{BlueprintError, Graph, Node, reference};
use crate::api::payment::{FunctionCode, FunctionSpec, KeyAttribute};
use crate::api::{Architecture, BillingMode, LambdaRuntime, PaymentPipelineSpec};
use crate::cloud::{
    DynamoDbTableSpec, EventSourceMappingSpec, IamRoleSpec, KmsKeySpec, LambdaFunctionSpec,
    LogGroupSpec, Owner, PolicyStatement, STREAMS_ARN, SecurityGroupSpec, SgRule, SnsTopicSpec,
    Spec, SqsQueueSpec,
};

/// The variable that gives the payment function its topic's ARN.
pub const TOPIC_ARN_VARIABLE: &str = "PAYMENT_TOPIC_ARN";
/// The variable that gives the poller its table's name.
pub const TABLE_NAME_VARIABLE: &str = "TRANSACTIONS_TABLE_NAME";

/// What the network referenced by `spec.networkRef` gives the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkOutputs {
    pub vpc_id: String,
    pub private_subnet_ids: Vec<String>,
}

/// Actions every function's role has on `*`, as AWS requires for them: the network
/// interfaces of a function in a VPC, and X-Ray's trace segments.
const VPC_AND_TRACING_ACTIONS: [&str; 7] = [
    "ec2:AssignPrivateIpAddresses",
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:UnassignPrivateIpAddresses",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
];

/// The desired graph of one PaymentPipeline in the network `network`.
pub fn build(
    owner: &Owner,
    spec: &PaymentPipelineSpec,
    network: &NetworkOutputs,
) -> Result<Graph, BlueprintError> {
    if network.private_subnet_ids.is_empty() {
        return Err(BlueprintError {
            field: "spec.networkRef".into(),
            message: "the network reports no private subnets for the functions (LAM-1)".into(),
        });
    }
    check_environment(
        &spec.payment_function,
        "spec.paymentFunction",
        TOPIC_ARN_VARIABLE,
    )?;
    check_environment(
        &spec.poller_function.function,
        "spec.pollerFunction",
        TABLE_NAME_VARIABLE,
    )?;
    let region = &spec.common.region;
    let mut nodes = Vec::new();
    let key = match &spec.common.kms_key_arn {
        Some(arn) => arn.clone(),
        None => {
            nodes.push(node(
                "kms/key",
                Spec::KmsKey(KmsKeySpec {
                    description: format!("hipaa-operator {owner}"),
                    rotation_enabled: true,
                    // Each service that stores the pipeline's data with the key.
                    service_principals: vec![
                        "dynamodb.amazonaws.com".into(),
                        "lambda.amazonaws.com".into(),
                        format!("logs.{region}.amazonaws.com"),
                        "sns.amazonaws.com".into(),
                        "sqs.amazonaws.com".into(),
                    ],
                    pending_deletion: false,
                }),
            ));
            reference("kms/key", "arn")
        }
    };

    let payment_name = resource_name(owner, "payment", 64);
    let poller_name = resource_name(owner, "poller", 64);
    for (log, function) in [
        ("logs/payment", &payment_name),
        ("logs/poller", &poller_name),
    ] {
        nodes.push(node(
            log,
            Spec::LogGroup(LogGroupSpec {
                name: format!("/aws/lambda/{function}"),
                retention_days: spec.common.log_retention_days,
                kms_key_arn: key.clone(),
            }),
        ));
    }

    nodes.push(node(
        "sns/topic",
        Spec::SnsTopic(SnsTopicSpec {
            name: resource_name(owner, "payments", 256),
            display_name: spec.topic.display_name.clone().unwrap_or_default(),
            kms_master_key_id: key.clone(),
            account_only_policy: true,
        }),
    ));
    let topic = reference("sns/topic", "arn");
    nodes.push(node(
        "sqs/dead-letter",
        Spec::SqsQueue(SqsQueueSpec {
            name: resource_name(owner, "payments-dlq", 80),
            kms_master_key_id: key.clone(),
            message_retention_seconds: spec.queue.dead_letter_retention_seconds,
            visibility_timeout_seconds: spec.queue.visibility_timeout_seconds,
            ..SqsQueueSpec::default()
        }),
    ));
    nodes.push(node(
        "sqs/queue",
        Spec::SqsQueue(SqsQueueSpec {
            name: resource_name(owner, "payments", 80),
            kms_master_key_id: key.clone(),
            message_retention_seconds: spec.queue.message_retention_seconds,
            visibility_timeout_seconds: spec.queue.visibility_timeout_seconds,
            dead_letter_target_arn: reference("sqs/dead-letter", "arn"),
            max_receive_count: spec.queue.max_receive_count,
            send_allowed_from_topic_arn: topic.clone(),
            subscribed_topic_arn: topic.clone(),
        }),
    ));
    let queue = reference("sqs/queue", "arn");
    let table = &spec.table;
    let (read, write) = match table.billing_mode {
        BillingMode::PayPerRequest => (0, 0),
        BillingMode::Provisioned => (
            i64::from(table.read_capacity_units.unwrap_or(1)),
            i64::from(table.write_capacity_units.unwrap_or(1)),
        ),
    };
    nodes.push(node(
        "dynamodb/table",
        Spec::DynamoDbTable(DynamoDbTableSpec {
            name: resource_name(owner, "transactions", 255),
            partition_key: key_attribute(&table.partition_key),
            sort_key: table
                .sort_key
                .as_ref()
                .map(key_attribute)
                .unwrap_or_default(),
            billing_mode: match table.billing_mode {
                BillingMode::PayPerRequest => "PAY_PER_REQUEST".into(),
                BillingMode::Provisioned => "PROVISIONED".into(),
            },
            read_capacity_units: read,
            write_capacity_units: write,
            kms_key_arn: key.clone(),
            point_in_time_recovery: true,
            deletion_protection: true,
            ttl_attribute: table.ttl_attribute.clone().unwrap_or_default(),
        }),
    ));
    let table_arn = reference("dynamodb/table", "arn");

    nodes.push(node(
        "sg/functions",
        Spec::SecurityGroup(SecurityGroupSpec {
            vpc_id: network.vpc_id.clone(),
            name: resource_name(owner, "functions", 255),
            description: "hipaa-operator payment functions: no ingress, HTTPS out".into(),
            ingress: vec![],
            // The AWS APIs (SNS, DynamoDB, KMS, X-Ray) over HTTPS, through the NAT.
            egress: vec![SgRule::tcp(443, 443, "0.0.0.0/0")],
        }),
    ));

    // The payment function publishes to the topic; the poller consumes the queue and
    // writes the table. Both use the key for the encrypted data and write their logs.
    let key_use = PolicyStatement::new(
        &["kms:Decrypt", "kms:GenerateDataKey"],
        std::slice::from_ref(&key),
    );
    let role = |name: &str, log: &str, own: Vec<PolicyStatement>| {
        let mut statements = own;
        statements.push(key_use.clone());
        statements.push(PolicyStatement::new(
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            &[reference(log, STREAMS_ARN)],
        ));
        statements.push(PolicyStatement::new(&VPC_AND_TRACING_ACTIONS, &["*"]));
        Spec::IamRole(IamRoleSpec {
            name: name.to_string(),
            trusted_service: "lambda.amazonaws.com".into(),
            statements: crate::cloud::normalized_statements(&statements),
        })
    };
    nodes.push(node(
        "iam/payment-role",
        role(
            &resource_name(owner, "payment", 64),
            "logs/payment",
            vec![PolicyStatement::new(
                &["sns:Publish"],
                std::slice::from_ref(&topic),
            )],
        ),
    ));
    nodes.push(node(
        "iam/poller-role",
        role(
            &resource_name(owner, "poller", 64),
            "logs/poller",
            vec![
                PolicyStatement::new(
                    &[
                        "sqs:ChangeMessageVisibility",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                        "sqs:ReceiveMessage",
                    ],
                    std::slice::from_ref(&queue),
                ),
                PolicyStatement::new(
                    &[
                        "dynamodb:BatchWriteItem",
                        "dynamodb:PutItem",
                        "dynamodb:UpdateItem",
                    ],
                    &[table_arn],
                ),
            ],
        ),
    ));

    let functions = reference("sg/functions", "id");
    let function = |name: &str,
                    f: &FunctionSpec,
                    role: &str,
                    variable: (&str, String)|
     -> LambdaFunctionSpec {
        let mut environment: BTreeMap<String, String> = f
            .environment
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect();
        environment.insert(variable.0.to_string(), variable.1);
        LambdaFunctionSpec {
            name: name.to_string(),
            role_arn: reference(role, "arn"),
            runtime: runtime(f.runtime).into(),
            handler: f.handler.clone(),
            architecture: match f.architecture {
                Architecture::X86_64 => "x86_64".into(),
                Architecture::Arm64 => "arm64".into(),
            },
            memory_mib: f.memory_mib,
            timeout_seconds: f.timeout_seconds,
            reserved_concurrency: f.reserved_concurrency,
            subnet_ids: network.private_subnet_ids.clone(),
            security_group_ids: vec![functions.clone()],
            environment,
            kms_key_arn: key.clone(),
            tracing_mode: "Active".into(),
            code: code_source(&f.code),
        }
    };
    nodes.push(Node {
        key: "lambda/payment".into(),
        spec: Spec::LambdaFunction(function(
            &payment_name,
            &spec.payment_function,
            "iam/payment-role",
            (TOPIC_ARN_VARIABLE, topic),
        )),
        // Its log group first, so AWS never creates one without retention or key.
        after: BTreeSet::from(["logs/payment".to_string()]),
    });
    nodes.push(Node {
        key: "lambda/poller".into(),
        spec: Spec::LambdaFunction(function(
            &poller_name,
            &spec.poller_function.function,
            "iam/poller-role",
            (TABLE_NAME_VARIABLE, reference("dynamodb/table", "id")),
        )),
        after: BTreeSet::from(["logs/poller".to_string()]),
    });
    nodes.push(node(
        "lambda/poller/queue-mapping",
        Spec::EventSourceMapping(EventSourceMappingSpec {
            function_name: reference("lambda/poller", "id"),
            event_source_arn: queue,
            batch_size: spec.poller_function.batch_size,
            maximum_batching_window_seconds: spec.poller_function.maximum_batching_window_seconds,
            enabled: true,
            report_batch_item_failures: true,
        }),
    ));

    let graph = Graph {
        nodes,
        tags: spec.common.tags.clone(),
        region: region.clone(),
    };
    graph.topological_order()?;
    Ok(graph)
}

fn node(key: &str, spec: Spec) -> Node {
    Node {
        key: key.into(),
        spec,
        after: BTreeSet::new(),
    }
}

/// The operator sets `variable` itself: the spec may not.
fn check_environment(f: &FunctionSpec, field: &str, variable: &str) -> Result<(), BlueprintError> {
    match f.environment.iter().position(|v| v.name == variable) {
        Some(at) => Err(BlueprintError {
            field: format!("{field}.environment[{at}].name"),
            message: format!(
                "{variable} is set by the operator (the function finds its peer through it)"
            ),
        }),
        None => Ok(()),
    }
}

/// `name:S|N|B`, as the table spec names key attributes.
fn key_attribute(k: &KeyAttribute) -> String {
    format!("{}:{}", k.name, k.type_.dynamodb())
}

/// The runtime's Lambda identifier.
fn runtime(r: LambdaRuntime) -> &'static str {
    match r {
        LambdaRuntime::Python312 => "python3.12",
        LambdaRuntime::Python313 => "python3.13",
        LambdaRuntime::Nodejs20 => "nodejs20.x",
        LambdaRuntime::Nodejs22 => "nodejs22.x",
        LambdaRuntime::Java21 => "java21",
        LambdaRuntime::ProvidedAl2023 => "provided.al2023",
    }
}

/// `s3://bucket/key`, with `?versionId=` when the spec pins a version.
pub fn code_source(code: &FunctionCode) -> String {
    match &code.s3_object_version {
        Some(version) => format!(
            "s3://{}/{}?versionId={version}",
            code.s3_bucket, code.s3_key
        ),
        None => format!("s3://{}/{}", code.s3_bucket, code.s3_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PaymentPipeline;
    use crate::api::payment::EnvVar;

    /// The PaymentPipeline of examples/stack.yaml, as the API server defaults it.
    fn example() -> PaymentPipelineSpec {
        let stack = include_str!("../../examples/stack.yaml");
        let doc = stack
            .split("\n---")
            .find(|d| d.contains("kind: PaymentPipeline"))
            .expect("the example has a PaymentPipeline");
        let pipeline: PaymentPipeline = serde_yaml_ng::from_str(doc).expect("it parses");
        pipeline.spec
    }

    fn owner() -> Owner {
        Owner::new("PaymentPipeline", "clinic", "clinic-payments")
    }

    fn network() -> NetworkOutputs {
        NetworkOutputs {
            vpc_id: "vpc-1".into(),
            private_subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
        }
    }

    fn spec_of<'a>(graph: &'a Graph, key: &str) -> &'a Spec {
        &graph
            .node(key)
            .unwrap_or_else(|| panic!("{key} in the graph"))
            .spec
    }

    #[test]
    fn the_example_builds_every_resource_in_dependency_order() {
        let graph = build(&owner(), &example(), &network()).unwrap();
        let keys: BTreeSet<&str> = graph.nodes.iter().map(|n| n.key.as_str()).collect();
        let want = BTreeSet::from([
            "kms/key",
            "logs/payment",
            "logs/poller",
            "sns/topic",
            "sqs/dead-letter",
            "sqs/queue",
            "dynamodb/table",
            "sg/functions",
            "iam/payment-role",
            "iam/poller-role",
            "lambda/payment",
            "lambda/poller",
            "lambda/poller/queue-mapping",
        ]);
        assert_eq!(keys, want);
        let order = graph.topological_order().unwrap();
        let at = |key: &str| order.iter().position(|k| k == key).unwrap();
        // Each row: a node that must exist before another, and why.
        let rows = [
            (
                "logs/payment",
                "lambda/payment",
                "the log group before the function",
            ),
            (
                "logs/poller",
                "lambda/poller",
                "the log group before the function",
            ),
            (
                "sns/topic",
                "sqs/queue",
                "the queue's policy and subscription name the topic",
            ),
            (
                "sqs/dead-letter",
                "sqs/queue",
                "the redrive policy names the dead-letter queue",
            ),
            (
                "iam/payment-role",
                "lambda/payment",
                "the function runs as its role",
            ),
            (
                "sg/functions",
                "lambda/poller",
                "the function runs in the group",
            ),
            (
                "dynamodb/table",
                "lambda/poller",
                "the poller is given the table's name",
            ),
            (
                "lambda/poller",
                "lambda/poller/queue-mapping",
                "the mapping invokes the poller",
            ),
            (
                "sqs/queue",
                "lambda/poller/queue-mapping",
                "the mapping reads the queue",
            ),
            (
                "kms/key",
                "sns/topic",
                "everything is encrypted with the key",
            ),
        ];
        for (first, then, why) in rows {
            assert!(at(first) < at(then), "{first} before {then}: {why}");
        }
    }

    #[test]
    fn hipaa_defaults_are_applied_whatever_the_spec_says() {
        let graph = build(&owner(), &example(), &network()).unwrap();
        let key = reference("kms/key", "arn");
        let Spec::DynamoDbTable(table) = spec_of(&graph, "dynamodb/table") else {
            panic!("a table")
        };
        assert!(table.point_in_time_recovery && table.deletion_protection);
        assert_eq!(table.kms_key_arn, key);
        let Spec::SnsTopic(topic) = spec_of(&graph, "sns/topic") else {
            panic!("a topic")
        };
        assert!(topic.account_only_policy);
        assert_eq!(topic.kms_master_key_id, key);
        let Spec::SqsQueue(queue) = spec_of(&graph, "sqs/queue") else {
            panic!("a queue")
        };
        assert_eq!(
            queue.dead_letter_target_arn,
            reference("sqs/dead-letter", "arn")
        );
        assert_eq!(
            queue.send_allowed_from_topic_arn,
            reference("sns/topic", "arn")
        );
        assert_eq!(queue.subscribed_topic_arn, reference("sns/topic", "arn"));
        assert!(queue.max_receive_count > 0);
        for function in ["lambda/payment", "lambda/poller"] {
            let Spec::LambdaFunction(f) = spec_of(&graph, function) else {
                panic!("a function")
            };
            assert_eq!(f.tracing_mode, "Active", "{function}");
            assert_eq!(f.kms_key_arn, key, "{function}");
            assert_eq!(f.subnet_ids, network().private_subnet_ids, "{function}");
            assert_eq!(f.security_group_ids, vec![reference("sg/functions", "id")]);
            assert!(f.reserved_concurrency > 0, "{function}");
        }
        let Spec::SecurityGroup(sg) = spec_of(&graph, "sg/functions") else {
            panic!("a security group")
        };
        assert!(sg.ingress.is_empty(), "no ingress to the functions");
        assert_eq!(sg.vpc_id, "vpc-1");
    }

    #[test]
    fn roles_name_the_resources_they_act_on_and_no_action_has_a_wildcard() {
        let graph = build(&owner(), &example(), &network()).unwrap();
        // Each row: a role, an action it must have, and the only resource it may act on.
        let rows = [
            (
                "iam/payment-role",
                "sns:Publish",
                reference("sns/topic", "arn"),
            ),
            (
                "iam/poller-role",
                "sqs:ReceiveMessage",
                reference("sqs/queue", "arn"),
            ),
            (
                "iam/poller-role",
                "dynamodb:PutItem",
                reference("dynamodb/table", "arn"),
            ),
            (
                "iam/poller-role",
                "kms:Decrypt",
                reference("kms/key", "arn"),
            ),
            (
                "iam/payment-role",
                "logs:PutLogEvents",
                reference("logs/payment", STREAMS_ARN),
            ),
        ];
        for (role, action, resource) in rows {
            let Spec::IamRole(r) = spec_of(&graph, role) else {
                panic!("a role")
            };
            let on: Vec<&Vec<String>> = r
                .statements
                .iter()
                .filter(|s| s.actions.iter().any(|a| a == action))
                .map(|s| &s.resources)
                .collect();
            assert_eq!(on, vec![&vec![resource]], "{role}: {action}");
        }
        for role in ["iam/payment-role", "iam/poller-role"] {
            let Spec::IamRole(r) = spec_of(&graph, role) else {
                panic!("a role")
            };
            assert_eq!(r.trusted_service, "lambda.amazonaws.com");
            for s in &r.statements {
                assert!(s.actions.iter().all(|a| !a.contains('*')), "{role}: {s:?}");
                if s.resources.iter().any(|r| r == "*") {
                    assert!(
                        s.actions
                            .iter()
                            .all(|a| VPC_AND_TRACING_ACTIONS.contains(&a.as_str())),
                        "{role}: only actions AWS cannot scope are on *: {s:?}"
                    );
                }
            }
            // The payment function may not touch the queue or the table, the poller
            // may not publish.
            let all: Vec<&str> = r
                .statements
                .iter()
                .flat_map(|s| s.actions.iter().map(String::as_str))
                .collect();
            match role {
                "iam/payment-role" => assert!(
                    !all.iter()
                        .any(|a| a.starts_with("sqs:") || a.starts_with("dynamodb:"))
                ),
                _ => assert!(!all.contains(&"sns:Publish")),
            }
        }
    }

    #[test]
    fn the_operator_gives_each_function_its_peer_and_refuses_to_be_overridden() {
        let graph = build(&owner(), &example(), &network()).unwrap();
        let Spec::LambdaFunction(payment) = spec_of(&graph, "lambda/payment") else {
            panic!("a function")
        };
        assert_eq!(
            payment.environment.get(TOPIC_ARN_VARIABLE),
            Some(&reference("sns/topic", "arn"))
        );
        let user = &example().payment_function.environment[0];
        assert_eq!(
            payment.environment.get(&user.name),
            Some(&user.value),
            "the user's variables stay"
        );
        let Spec::LambdaFunction(poller) = spec_of(&graph, "lambda/poller") else {
            panic!("a function")
        };
        assert_eq!(
            poller.environment.get(TABLE_NAME_VARIABLE),
            Some(&reference("dynamodb/table", "id"))
        );

        let mut spec = example();
        spec.payment_function.environment.push(EnvVar {
            name: TOPIC_ARN_VARIABLE.into(),
            value: "arn:aws:sns:us-east-1:1:other".into(),
        });
        let at = spec.payment_function.environment.len() - 1;
        let err = build(&owner(), &spec, &network()).unwrap_err();
        assert_eq!(
            err.field,
            format!("spec.paymentFunction.environment[{at}].name")
        );
        assert!(err.message.contains(TOPIC_ARN_VARIABLE), "{err}");
    }

    #[test]
    fn a_network_without_private_subnets_is_refused_before_anything_is_built() {
        let err = build(
            &owner(),
            &example(),
            &NetworkOutputs {
                vpc_id: "vpc-1".into(),
                private_subnet_ids: vec![],
            },
        )
        .unwrap_err();
        assert_eq!(err.field, "spec.networkRef");
    }

    #[test]
    fn a_given_key_replaces_the_pipelines_own() {
        let mut spec = example();
        let arn = "arn:aws:kms:us-east-1:111122223333:key/given".to_string();
        spec.common.kms_key_arn = Some(arn.clone());
        let graph = build(&owner(), &spec, &network()).unwrap();
        assert!(graph.node("kms/key").is_none());
        let Spec::SqsQueue(queue) = spec_of(&graph, "sqs/queue") else {
            panic!("a queue")
        };
        assert_eq!(queue.kms_master_key_id, arn);
    }

    #[test]
    fn aws_names_fit_their_limits_and_differ_from_the_networks() {
        let long = Owner::new("PaymentPipeline", &"n".repeat(63), &"p".repeat(200));
        let graph = build(&long, &example(), &network()).unwrap();
        // Each row: a node, its name field's limit.
        for (key, max) in [
            ("lambda/payment", 64),
            ("lambda/poller", 64),
            ("iam/payment-role", 64),
            ("sqs/queue", 80),
            ("sqs/dead-letter", 80),
            ("sns/topic", 256),
            ("dynamodb/table", 255),
        ] {
            let name = spec_of(&graph, key).field("name").unwrap();
            assert!(name.len() <= max, "{key}: {name} ({} > {max})", name.len());
        }
        let names = |graph: &Graph| -> BTreeSet<String> {
            graph
                .nodes
                .iter()
                .filter_map(|n| n.spec.field("name"))
                .collect()
        };
        let same = Owner::new("PaymentPipeline", "clinic", "clinic");
        let pipeline = names(&build(&same, &example(), &network()).unwrap());
        // The topic and the queue may share a name (different services).
        assert!(pipeline.len() >= 8, "{pipeline:?}");
        let network_owner = Owner::new("HipaaNetwork", "clinic", "clinic");
        let network_spec: crate::api::HipaaNetwork = serde_yaml_ng::from_str(
            include_str!("../../examples/stack.yaml")
                .split("\n---")
                .next()
                .unwrap(),
        )
        .unwrap();
        let network =
            names(&super::super::network::build(&network_owner, &network_spec.spec).unwrap());
        assert!(
            pipeline.is_disjoint(&network),
            "{:?}",
            pipeline.intersection(&network).collect::<Vec<_>>()
        );
    }
}
