//! The payment pipeline's rows: LAM-1..4, SNS-1, SQS-1..2, DDB-1..3, KMS-1, LOG-1 over a
//! pipeline's nodes. Each reads what observe reported, never the spec.

use super::rows::{Absent, Row, any, kms1, log1, plural, scan, who};
use super::{Context, ObservedNode};
use crate::api::ComplianceEntry;
use crate::cloud::{
    DynamoDbTableSpec, Kind, LambdaFunctionSpec, Observed, PUBLIC_ACCESS, SnsTopicSpec, Spec,
    SqsQueueSpec,
};

/// Fragments of variable names that hold credentials (LAM-2), as the API refuses them.
const SECRET_NAMES: [&str; 8] = [
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "PRIVATE_KEY",
    "PRIVATEKEY",
    "API_KEY",
    "CREDENTIAL",
];

/// The node of the queue the poller consumes (SQS-2 reads its redrive policy).
pub const MAIN_QUEUE: &str = "sqs/queue";

/// Evaluates the pipeline's rows over `nodes`, in the control table's order.
/// `ctx.private_subnet_ids` are the network's private subnets (LAM-1).
pub fn evaluate_payment(nodes: &[ObservedNode], ctx: &Context) -> Vec<ComplianceEntry> {
    vec![
        lam1(nodes, ctx),
        lam2(nodes),
        lam3(nodes),
        lam4(nodes),
        sns1(nodes),
        sqs1(nodes),
        sqs2(nodes),
        ddb(nodes, "DDB-1", "point-in-time recovery on", |t| {
            (!t.point_in_time_recovery).then(|| "point-in-time recovery off".to_string())
        }),
        ddb(nodes, "DDB-2", "encrypted with a customer KMS key", |t| {
            t.kms_key_arn
                .is_empty()
                .then(|| "not encrypted with a customer KMS key".to_string())
        }),
        ddb(nodes, "DDB-3", "deletion protection on", |t| {
            (!t.deletion_protection).then(|| "deletion protection off".to_string())
        }),
        kms1(nodes),
        log1(nodes, ctx),
    ]
}

/// The functions, each checked by `violation` (a list of findings).
fn functions(
    id: &'static str,
    nodes: &[ObservedNode],
    violation: impl Fn(&LambdaFunctionSpec, &Observed) -> Vec<String>,
    what: &str,
) -> ComplianceEntry {
    let mut row = Row::new(id);
    let found = scan(nodes, &mut row, &[Kind::LambdaFunction], any, Absent::Fails);
    for &(node, o) in &found.found {
        if let Spec::LambdaFunction(f) = &o.spec {
            for v in violation(f, o) {
                row.fail(format!("{}: {v}", who(node, o)));
            }
        }
    }
    let passed = format!("{} {what}", plural(found.declared, "function", "functions"));
    row.finish(passed)
}

/// LAM-1: every function runs in the network's private subnets, with a security group.
fn lam1(nodes: &[ObservedNode], ctx: &Context) -> ComplianceEntry {
    functions(
        "LAM-1",
        nodes,
        |f, _| {
            let mut out = Vec::new();
            if f.subnet_ids.is_empty() {
                out.push("not in a VPC".to_string());
            }
            let outside: Vec<&String> = f
                .subnet_ids
                .iter()
                .filter(|s| !ctx.private_subnet_ids.contains(s))
                .collect();
            if !ctx.private_subnet_ids.is_empty() && !outside.is_empty() {
                out.push(format!(
                    "in subnets that are not the network's private ones: {}",
                    outside
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !f.subnet_ids.is_empty() && f.security_group_ids.is_empty() {
                out.push("no security group".to_string());
            }
            out
        },
        "in the network's private subnets",
    )
}

/// LAM-2: the environment is encrypted with a customer key and holds no credential.
fn lam2(nodes: &[ObservedNode]) -> ComplianceEntry {
    functions(
        "LAM-2",
        nodes,
        |f, _| {
            let mut out = Vec::new();
            if f.kms_key_arn.is_empty() {
                out.push("environment not encrypted with a customer KMS key".to_string());
            }
            for name in f.environment.keys() {
                let upper = name.to_ascii_uppercase();
                if SECRET_NAMES.iter().any(|s| upper.contains(s)) {
                    out.push(format!("variable {name} looks like a credential"));
                }
            }
            out
        },
        "with the environment KMS-encrypted and no credentials in it",
    )
}

/// LAM-3: no function can be invoked from outside the account.
fn lam3(nodes: &[ObservedNode]) -> ComplianceEntry {
    functions(
        "LAM-3",
        nodes,
        |_, o| {
            o.attributes
                .get(PUBLIC_ACCESS)
                .filter(|how| !how.is_empty())
                .map(|how| vec![format!("invocable from outside the account ({how})")])
                .unwrap_or_default()
        },
        "not public (no public resource policy or function URL)",
    )
}

/// LAM-4: reserved concurrency set and X-Ray tracing active.
fn lam4(nodes: &[ObservedNode]) -> ComplianceEntry {
    functions(
        "LAM-4",
        nodes,
        |f, _| {
            let mut out = Vec::new();
            if f.reserved_concurrency <= 0 {
                out.push("no reserved concurrency".to_string());
            }
            if f.tracing_mode != "Active" {
                out.push(format!("tracing {}", f.tracing_mode));
            }
            out
        },
        "with reserved concurrency and active tracing",
    )
}

/// SNS-1: every topic is encrypted with a customer key and admits only the account.
fn sns1(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("SNS-1");
    let found = scan(nodes, &mut row, &[Kind::SnsTopic], any, Absent::Fails);
    for &(node, o) in &found.found {
        if let Spec::SnsTopic(SnsTopicSpec {
            kms_master_key_id,
            account_only_policy,
            ..
        }) = &o.spec
        {
            if kms_master_key_id.is_empty() {
                row.fail(format!(
                    "{}: not encrypted with a customer KMS key",
                    who(node, o)
                ));
            }
            if !account_only_policy {
                row.fail(format!(
                    "{}: its policy admits more than the account",
                    who(node, o)
                ));
            }
        }
    }
    let passed = format!(
        "{} KMS-encrypted, admitting only the account",
        plural(found.declared, "topic", "topics")
    );
    row.finish(passed)
}

/// SQS-1: every queue is encrypted with a customer key and its policy, if any, admits
/// only the pipeline's topic.
fn sqs1(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("SQS-1");
    let found = scan(nodes, &mut row, &[Kind::SqsQueue], any, Absent::Fails);
    for &(node, o) in &found.found {
        if let Spec::SqsQueue(SqsQueueSpec {
            kms_master_key_id,
            send_allowed_from_topic_arn,
            ..
        }) = &o.spec
        {
            if kms_master_key_id.is_empty() {
                row.fail(format!(
                    "{}: not encrypted with a customer KMS key",
                    who(node, o)
                ));
            }
            // Observe reports the topic's ARN for the operator's policy, anything else
            // for a policy of another shape.
            if !send_allowed_from_topic_arn.is_empty()
                && !send_allowed_from_topic_arn.starts_with("arn:")
            {
                row.fail(format!(
                    "{}: its policy is not the operator's ({send_allowed_from_topic_arn})",
                    who(node, o)
                ));
            }
        }
    }
    let passed = format!(
        "{} KMS-encrypted, sent to only by the pipeline's topic",
        plural(found.declared, "queue", "queues")
    );
    row.finish(passed)
}

/// SQS-2: the queue the poller consumes sends failed messages to a dead-letter queue.
fn sqs2(nodes: &[ObservedNode]) -> ComplianceEntry {
    let mut row = Row::new("SQS-2");
    let found = scan(
        nodes,
        &mut row,
        &[Kind::SqsQueue],
        |key| key == MAIN_QUEUE,
        Absent::Fails,
    );
    for &(node, o) in &found.found {
        if let Spec::SqsQueue(q) = &o.spec
            && (q.dead_letter_target_arn.is_empty() || q.max_receive_count <= 0)
        {
            row.fail(format!(
                "{}: no redrive policy to a dead-letter queue",
                who(node, o)
            ));
        }
    }
    row.finish("the queue redrives to its dead-letter queue".to_string())
}

/// A DynamoDB row: every table checked by `violation`.
fn ddb(
    nodes: &[ObservedNode],
    id: &'static str,
    what: &str,
    violation: impl Fn(&DynamoDbTableSpec) -> Option<String>,
) -> ComplianceEntry {
    let mut row = Row::new(id);
    let found = scan(nodes, &mut row, &[Kind::DynamoDbTable], any, Absent::Fails);
    for &(node, o) in &found.found {
        if let Spec::DynamoDbTable(t) = &o.spec
            && let Some(v) = violation(t)
        {
            row.fail(format!("{}: {v}", who(node, o)));
        }
    }
    let passed = format!("{} {what}", plural(found.declared, "table", "tables"));
    row.finish(passed)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::ControlResult::{self, Failed, Passed, Unknown};
    use crate::cloud::{KmsKeySpec, LogGroupSpec, State};

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/k-1";
    const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:payments";
    const PRIVATE: [&str; 2] = ["subnet-a", "subnet-b"];

    fn node(key: &str, spec: Spec) -> ObservedNode {
        ObservedNode {
            node: key.into(),
            kind: spec.kind(),
            observed: Ok(Some(Observed {
                id: format!("{key}-id"),
                arn: None,
                state: State::Available,
                spec,
                tags: BTreeMap::new(),
                attributes: BTreeMap::new(),
            })),
        }
    }

    fn function() -> LambdaFunctionSpec {
        LambdaFunctionSpec {
            name: "payment".into(),
            subnet_ids: PRIVATE.map(String::from).to_vec(),
            security_group_ids: vec!["sg-f".into()],
            environment: BTreeMap::from([("PAYMENT_PROVIDER".to_string(), "x".to_string())]),
            kms_key_arn: KEY.into(),
            tracing_mode: "Active".into(),
            reserved_concurrency: 10,
            ..LambdaFunctionSpec::default()
        }
    }

    fn queue(dead_letter: &str) -> SqsQueueSpec {
        SqsQueueSpec {
            name: "q".into(),
            kms_master_key_id: KEY.into(),
            dead_letter_target_arn: dead_letter.into(),
            max_receive_count: if dead_letter.is_empty() { 0 } else { 5 },
            send_allowed_from_topic_arn: if dead_letter.is_empty() {
                String::new()
            } else {
                TOPIC.into()
            },
            ..SqsQueueSpec::default()
        }
    }

    /// A compliant pipeline, as observe reports it.
    fn compliant() -> Vec<ObservedNode> {
        vec![
            node(
                "kms/key",
                Spec::KmsKey(KmsKeySpec {
                    description: "k".into(),
                    rotation_enabled: true,
                    ..KmsKeySpec::default()
                }),
            ),
            node(
                "logs/payment",
                Spec::LogGroup(LogGroupSpec {
                    name: "/aws/lambda/payment".into(),
                    retention_days: 365,
                    kms_key_arn: KEY.into(),
                }),
            ),
            node(
                "sns/topic",
                Spec::SnsTopic(SnsTopicSpec {
                    name: "payments".into(),
                    kms_master_key_id: KEY.into(),
                    account_only_policy: true,
                    ..SnsTopicSpec::default()
                }),
            ),
            node("sqs/dead-letter", Spec::SqsQueue(queue(""))),
            node(
                "sqs/queue",
                Spec::SqsQueue(queue("arn:aws:sqs:us-east-1:1:dlq")),
            ),
            node(
                "dynamodb/table",
                Spec::DynamoDbTable(DynamoDbTableSpec {
                    name: "t".into(),
                    kms_key_arn: KEY.into(),
                    point_in_time_recovery: true,
                    deletion_protection: true,
                    ..DynamoDbTableSpec::default()
                }),
            ),
            node("lambda/payment", Spec::LambdaFunction(function())),
            node(
                "lambda/poller",
                Spec::LambdaFunction(LambdaFunctionSpec {
                    name: "poller".into(),
                    ..function()
                }),
            ),
        ]
    }

    fn ctx() -> Context {
        Context {
            private_subnet_ids: PRIVATE.map(String::from).to_vec(),
            ..Context::default()
        }
    }

    fn result(nodes: &[ObservedNode], id: &str) -> (ControlResult, String) {
        let entry = evaluate_payment(nodes, &ctx())
            .into_iter()
            .find(|e| e.id == id)
            .unwrap_or_else(|| panic!("row {id}"));
        (entry.result, entry.detail)
    }

    fn edit(nodes: &mut [ObservedNode], key: &str, change: impl FnOnce(&mut Observed)) {
        let node = nodes.iter_mut().find(|n| n.node == key).unwrap();
        change(node.observed.as_mut().unwrap().as_mut().unwrap());
    }

    #[test]
    fn a_compliant_pipeline_passes_every_row_in_table_order() {
        let entries = evaluate_payment(&compliant(), &ctx());
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, crate::compliance::PAYMENT_CONTROLS.to_vec());
        for e in &entries {
            assert_eq!(e.result, Passed, "{}: {}", e.id, e.detail);
            assert!(!e.citation.is_empty(), "{}", e.id);
        }
    }

    #[test]
    fn each_violation_fails_its_row_and_names_the_node() {
        type Edit = Box<dyn Fn(&mut Observed)>;
        let lambda = |f: fn(&mut LambdaFunctionSpec)| -> Edit {
            Box::new(move |o: &mut Observed| {
                if let Spec::LambdaFunction(spec) = &mut o.spec {
                    f(spec)
                }
            })
        };
        let table = |f: fn(&mut DynamoDbTableSpec)| -> Edit {
            Box::new(move |o: &mut Observed| {
                if let Spec::DynamoDbTable(spec) = &mut o.spec {
                    f(spec)
                }
            })
        };
        let queue_edit = |f: fn(&mut SqsQueueSpec)| -> Edit {
            Box::new(move |o: &mut Observed| {
                if let Spec::SqsQueue(spec) = &mut o.spec {
                    f(spec)
                }
            })
        };
        // Each row: what changed on AWS, the node, the row that fails, a word of its detail.
        let rows: Vec<(&str, &str, &str, &str, Edit)> = vec![
            (
                "function out of the VPC",
                "lambda/payment",
                "LAM-1",
                "not in a VPC",
                lambda(|f| f.subnet_ids.clear()),
            ),
            (
                "function in a public subnet",
                "lambda/poller",
                "LAM-1",
                "subnet-public",
                lambda(|f| f.subnet_ids = vec!["subnet-public".into()]),
            ),
            (
                "environment key removed",
                "lambda/payment",
                "LAM-2",
                "customer KMS key",
                lambda(|f| f.kms_key_arn.clear()),
            ),
            (
                "a credential in the environment",
                "lambda/payment",
                "LAM-2",
                "DB_PASSWORD",
                lambda(|f| {
                    f.environment.insert("DB_PASSWORD".into(), "x".into());
                }),
            ),
            (
                "a public function URL",
                "lambda/payment",
                "LAM-3",
                "function URL",
                Box::new(|o: &mut Observed| {
                    o.attributes.insert(
                        PUBLIC_ACCESS.into(),
                        "function URL with AuthType NONE".into(),
                    );
                }),
            ),
            (
                "reserved concurrency removed",
                "lambda/poller",
                "LAM-4",
                "reserved concurrency",
                lambda(|f| f.reserved_concurrency = 0),
            ),
            (
                "tracing off",
                "lambda/poller",
                "LAM-4",
                "PassThrough",
                lambda(|f| f.tracing_mode = "PassThrough".into()),
            ),
            (
                "topic key removed",
                "sns/topic",
                "SNS-1",
                "customer KMS key",
                Box::new(|o: &mut Observed| {
                    if let Spec::SnsTopic(t) = &mut o.spec {
                        t.kms_master_key_id.clear()
                    }
                }),
            ),
            (
                "topic policy opened",
                "sns/topic",
                "SNS-1",
                "more than the account",
                Box::new(|o: &mut Observed| {
                    if let Spec::SnsTopic(t) = &mut o.spec {
                        t.account_only_policy = false
                    }
                }),
            ),
            (
                "queue key removed",
                "sqs/dead-letter",
                "SQS-1",
                "customer KMS key",
                queue_edit(|q| q.kms_master_key_id.clear()),
            ),
            (
                "queue policy replaced",
                "sqs/queue",
                "SQS-1",
                "not the operator's",
                queue_edit(|q| q.send_allowed_from_topic_arn = "a policy with 2 statements".into()),
            ),
            (
                "redrive removed",
                "sqs/queue",
                "SQS-2",
                "dead-letter",
                queue_edit(|q| q.dead_letter_target_arn.clear()),
            ),
            (
                "PITR off",
                "dynamodb/table",
                "DDB-1",
                "point-in-time recovery off",
                table(|t| t.point_in_time_recovery = false),
            ),
            (
                "table key removed",
                "dynamodb/table",
                "DDB-2",
                "customer KMS key",
                table(|t| t.kms_key_arn.clear()),
            ),
            (
                "deletion protection off",
                "dynamodb/table",
                "DDB-3",
                "deletion protection off",
                table(|t| t.deletion_protection = false),
            ),
        ];
        for (what, key, row, word, change) in rows {
            let mut nodes = compliant();
            edit(&mut nodes, key, |o| change(o));
            let (got, detail) = result(&nodes, row);
            assert_eq!(got, Failed, "{what}: {detail}");
            assert!(
                detail.contains(key) && detail.contains(word),
                "{what}: {detail}"
            );
            // Only that row fails.
            for e in evaluate_payment(&nodes, &ctx()) {
                if e.id != row {
                    assert_eq!(e.result, Passed, "{what}: {} {}", e.id, e.detail);
                }
            }
        }
    }

    #[test]
    fn missing_and_unobservable_resources_are_failed_and_unknown_never_passed() {
        let mut nodes = compliant();
        nodes.retain(|n| n.node != "dynamodb/table");
        nodes.push(ObservedNode {
            node: "dynamodb/table".into(),
            kind: Kind::DynamoDbTable,
            observed: Ok(None),
        });
        assert_eq!(result(&nodes, "DDB-1").0, Failed);
        let mut nodes = compliant();
        nodes.retain(|n| n.node != "sqs/queue");
        nodes.push(ObservedNode {
            node: "sqs/queue".into(),
            kind: Kind::SqsQueue,
            observed: Err("AccessDenied: not authorized to GetQueueAttributes".into()),
        });
        let (got, detail) = result(&nodes, "SQS-2");
        assert_eq!(got, Unknown, "{detail}");
        assert!(detail.contains("AccessDenied"), "{detail}");
    }
}
