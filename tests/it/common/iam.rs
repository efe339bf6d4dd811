//! The operator's IAM policy as a user gets it (`hipaa-operator iam-policy`), and a check
//! of calls against it that does not use the code that generated it.

use serde_json::Value;

/// The policy the binary prints.
pub fn operator_policy() -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
        .arg("iam-policy")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("iam-policy prints JSON")
}

/// The IAM action of a request, from the service as SigV4 signs it and the operation.
fn action_of(service: &str, operation: &str) -> String {
    let prefix = match service {
        // Signing names that differ from IAM's service prefix.
        "tagging" => "tag",
        other => other,
    };
    format!("{prefix}:{operation}")
}

/// Whether IAM's wildcard pattern (`*`, `?`, case-insensitive) matches `text`.
fn matches(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

/// Whether an Allow statement of `policy` names the action (on any resource: moto's log
/// does not say which resource a request acted on).
pub fn allows(policy: &Value, action: &str) -> bool {
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| {
            s["Effect"] == "Allow"
                && match &s["Action"] {
                    Value::String(one) => matches(one, action),
                    Value::Array(many) => many
                        .iter()
                        .any(|a| a.as_str().is_some_and(|a| matches(a, action))),
                    _ => false,
                }
        })
}

/// Fails with every `(service, operation)` the policy does not allow.
pub fn assert_allows_all<'a>(
    policy: &Value,
    calls: impl IntoIterator<Item = (&'a str, &'a str)>,
    what: &str,
) -> usize {
    let mut checked = 0;
    let mut denied = Vec::new();
    for (service, operation) in calls {
        checked += 1;
        let action = action_of(service, operation);
        if !allows(policy, &action) {
            denied.push(action);
        }
    }
    assert!(
        denied.is_empty(),
        "{what}: the generated policy does not allow {denied:?}"
    );
    checked
}

#[test]
fn the_check_matches_as_iam_does() {
    // Each row: a policy action pattern, an action, whether IAM would match them.
    let rows = [
        ("ec2:CreateVpc", "ec2:CreateVpc", true),
        ("ec2:createvpc", "ec2:CreateVpc", true),
        ("ec2:Create*", "ec2:CreateVpc", true),
        ("ec2:CreateVpc", "ec2:CreateVpcEndpoint", false),
        ("ec2:CreateVpc", "kms:CreateVpc", false),
    ];
    for (pattern, action, want) in rows {
        let policy = serde_json::json!({"Statement": [{"Effect": "Allow", "Action": [pattern]}]});
        assert_eq!(allows(&policy, action), want, "{pattern} vs {action}");
    }
    let deny = serde_json::json!({"Statement": [{"Effect": "Deny", "Action": "ec2:CreateVpc"}]});
    assert!(!allows(&deny, "ec2:CreateVpc"), "a Deny allows nothing");
}
