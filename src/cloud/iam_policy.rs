//! The IAM policy the operator's role needs, generated from the kind registry: every
//! operation each AWS kind's backend calls ([`KindInfo::calls`] and, in other services,
//! [`KindInfo::also_calls`]), the permissions AWS checks on the caller during them
//! ([`KindInfo::requires`]) and the calls that belong to no kind ([`STACK_CALLS`]).
//! Nothing here is listed by hand, so a kind that starts calling a new operation changes
//! the policy with it (a unit test holds the registry to the backend files; an
//! end-to-end test holds the policy to what moto saw).
//!
//! Guarantees: no action has a wildcard; reads (`Describe*`, `List*`, `Get*`) are allowed
//! on every resource, as most of them cannot be scoped; changes are grouped by service
//! and by the resources the kind names (IAM roles only `hipaa-…`). Caveat: changes to
//! EC2, KMS, CloudWatch Logs, SNS, SQS and DynamoDB resources are not scoped by tag
//! conditions, because the operator also adopts and repairs resources (the VPC's default
//! security group) whose tags it has not written yet.

use std::collections::BTreeMap;

use serde::Serialize;

use super::audit::is_mutating;
use super::kind::{Kind, KindInfo, STACK_CALLS};

/// AWS's limit on a managed policy's size, in characters other than white space.
pub const MANAGED_POLICY_MAX_CHARS: usize = 6144;

/// The IAM action of an operation of a service, as the registry names both.
pub fn action(service: &str, operation: &str) -> String {
    format!("{}:{operation}", iam_prefix(service))
}

/// The IAM service prefix of a service as the backends count calls (the SigV4 signing
/// name). They are the same for every service the operator calls today except the
/// tagging API; a new service whose prefix differs is added here.
fn iam_prefix(service: &str) -> &str {
    match service {
        "tagging" => "tag",
        other => other,
    }
}

/// Every `(IAM action, resource pattern)` the operator needs, without duplicates.
pub fn permissions() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |action: String, resource: &str| {
        let resource = if is_mutating(action.split(':').nth(1).unwrap_or_default()) {
            resource
        } else {
            "*"
        };
        let entry = (action, resource.to_string());
        if !out.contains(&entry) {
            out.push(entry);
        }
    };
    for info in Kind::ALL.iter().map(|kind| kind.info()) {
        let KindInfo {
            service,
            calls,
            also_calls,
            requires,
            resources,
            ..
        } = info;
        for operation in *calls {
            add(action(service, operation), resources);
        }
        for (other, operation) in *also_calls {
            add(action(other, operation), resources);
        }
        for (required, resource) in *requires {
            add(required.to_string(), resource);
        }
    }
    for (service, operation) in STACK_CALLS {
        add(action(service, operation), "*");
    }
    out.sort();
    out
}

/// An IAM policy document, its fields in the order AWS's own documents show them.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

/// One `Allow` statement.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: String,
    pub effect: &'static str,
    pub action: Vec<String>,
    pub resource: String,
}

/// The policy document: one statement for every read, one per service and resource
/// pattern for changes, each with its actions sorted.
pub fn policy() -> Policy {
    let mut reads = Vec::new();
    let mut changes: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (action, resource) in permissions() {
        let (service, operation) = action.split_once(':').unwrap_or_default();
        if is_mutating(operation) {
            changes
                .entry((service.to_string(), resource))
                .or_default()
                .push(action);
        } else if !reads.contains(&action) {
            reads.push(action);
        }
    }
    reads.sort();
    let mut statement = vec![Statement {
        sid: "Read".into(),
        effect: "Allow",
        action: reads,
        resource: "*".into(),
    }];
    for ((service, resource), action) in changes {
        let scope = if resource == "*" { "" } else { "Named" };
        statement.push(Statement {
            sid: format!("Change{}{scope}", capitalized(&service)),
            effect: "Allow",
            action,
            resource,
        });
    }
    Policy {
        version: "2012-10-17",
        statement,
    }
}

/// `ec2` -> `Ec2` (statement ids are alphanumeric).
fn capitalized(service: &str) -> String {
    let alphanumeric: String = service
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut chars = alphanumeric.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every `done("service", "Operation", …)` in the AWS backend's files: the calls the
    /// backend can make. A call whose arguments are not two literals fails the scan.
    fn calls_in_backend() -> BTreeSet<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cloud/aws");
        let mut found = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices(".done(") {
                let args: String = text[at + 6..]
                    .chars()
                    .take_while(|c| *c != ')')
                    .filter(|c| !c.is_whitespace())
                    .collect();
                let mut literal = args.split(',').take(2).map(|arg| {
                    arg.strip_prefix('"')
                        .and_then(|a| a.strip_suffix('"'))
                        .unwrap_or_else(|| {
                            panic!(
                                "{}: done({args}): name the call with literals",
                                path.display()
                            )
                        })
                        .to_string()
                });
                found.insert((literal.next().unwrap(), literal.next().unwrap()));
            }
        }
        found
    }

    #[test]
    fn the_registry_lists_exactly_the_calls_the_aws_backend_makes() {
        let mut registered: BTreeSet<(String, String)> = STACK_CALLS
            .iter()
            .map(|(s, o)| (s.to_string(), o.to_string()))
            .collect();
        for kind in Kind::ALL {
            let info = kind.info();
            for op in info.calls {
                registered.insert((info.service.to_string(), op.to_string()));
            }
            for (service, op) in info.also_calls {
                assert_ne!(*service, info.service, "{kind:?}: {op} belongs in calls");
                registered.insert((service.to_string(), op.to_string()));
            }
            // Its describe and tag calls are among its calls.
            assert!(info.calls.contains(&info.describe), "{kind:?}: describe");
            assert!(info.calls.contains(&info.tag_operation), "{kind:?}: tag");
        }
        let made = calls_in_backend();
        assert!(made.len() > 50, "the scan finds the calls: {made:?}");
        let unregistered: Vec<_> = made.difference(&registered).collect();
        let never_made: Vec<_> = registered.difference(&made).collect();
        assert!(
            unregistered.is_empty(),
            "calls missing from the registry: {unregistered:?}"
        );
        assert!(
            never_made.is_empty(),
            "registered calls no backend file makes: {never_made:?}"
        );
    }

    #[test]
    fn the_policy_has_no_wildcard_action_and_fits_a_managed_policy() {
        let policy = serde_json::to_value(policy()).unwrap();
        let text = serde_json::to_string(&policy).unwrap();
        let size = text.chars().filter(|c| !c.is_whitespace()).count();
        assert!(size <= MANAGED_POLICY_MAX_CHARS, "{size} characters");
        let mut actions = 0;
        for statement in policy["Statement"].as_array().unwrap() {
            assert_eq!(statement["Effect"], "Allow");
            let sid = statement["Sid"].as_str().unwrap();
            assert!(sid.chars().all(|c| c.is_ascii_alphanumeric()), "{sid}");
            for action in statement["Action"].as_array().unwrap() {
                let action = action.as_str().unwrap();
                assert!(!action.contains('*'), "{action}");
                let (service, operation) = action.split_once(':').unwrap();
                assert!(!service.is_empty() && !operation.is_empty(), "{action}");
                actions += 1;
            }
        }
        assert!(actions > 50, "{actions} actions");
    }

    #[test]
    fn changes_to_roles_are_scoped_to_the_operators_roles_and_reads_are_not() {
        let policy = serde_json::to_value(policy()).unwrap();
        let scope_of = |wanted: &str| -> Vec<String> {
            policy["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["Action"].as_array().unwrap().iter().any(|a| a == wanted))
                .map(|s| s["Resource"].as_str().unwrap().to_string())
                .collect()
        };
        let roles = crate::cloud::kind::OPERATOR_ROLES.to_string();
        // Each row: an action, and the one resource pattern it is allowed on.
        let rows = [
            ("iam:CreateRole", roles.clone()),
            ("iam:PutRolePolicy", roles.clone()),
            ("iam:PassRole", roles.clone()),
            ("iam:GetRole", "*".to_string()),
            ("ec2:CreateVpc", "*".to_string()),
            ("ec2:DescribeAvailabilityZones", "*".to_string()),
            ("kms:CreateGrant", "*".to_string()),
        ];
        for (action, scope) in rows {
            assert_eq!(scope_of(action), vec![scope], "{action}");
        }
    }
}
