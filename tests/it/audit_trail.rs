//! The audit trail against moto: the operator binary (`--log-format json`) converges a
//! HipaaNetwork, remediates a change made behind its back, and deletes it, on a moto
//! server of this test's own; every mutating request in moto's request log has exactly
//! one audit line naming the custom resource, the operation and the reason, and no audit
//! line lacks its request: the counts are equal, operation by operation. Every request
//! in that log is one the generated IAM policy (`hipaa-operator iam-policy`) allows, and
//! the AWS credentials it ran with appear nowhere in its debug log.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use crate::common::moto::PrivateMoto;
use crate::common::{Cluster, eventually, repo};
use aws_sdk_ec2::types::{IpPermission, IpRange};
use hipaa_operator::api::HipaaNetwork;
use hipaa_operator::cloud::audit::is_mutating;
use hipaa_operator::cloud::aws::sdk_config;
use kube::api::Api;
use serde_json::Value;

const NS: &str = "audit";
/// Credentials the operator runs with in this test (moto accepts any).
const SECRET_KEY: &str = "auditSecretKey0123456789abcdefSECRETvalue";
const SESSION_TOKEN: &str = "auditSessionToken0123456789TOKENvalue";
const NAME: &str = "clinic-net";

/// The example's HipaaNetwork, deleted with its AWS resources at the end.
fn network_manifest() -> String {
    let stack = std::fs::read_to_string(repo("examples/stack.yaml")).unwrap();
    let network = stack.split("\n---").next().unwrap();
    assert!(network.contains("kind: HipaaNetwork"));
    network.replace("deletionPolicy: Retain", "deletionPolicy: Delete")
}

/// Audit lines of a JSON log: (service, operation) -> lines.
fn audit_lines(log: &str) -> BTreeMap<(String, String), Vec<Value>> {
    let mut out: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if entry["audit"] != Value::Bool(true) {
            continue;
        }
        let key = (
            entry["service"].as_str().unwrap_or_default().to_string(),
            entry["operation"].as_str().unwrap_or_default().to_string(),
        );
        out.entry(key).or_default().push(entry);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_on_aws_has_exactly_one_audit_line() {
    let moto = PrivateMoto::start();
    moto.start_recording();
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace(NS).await;
    let log = c.home.join("operator.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
        .args([
            "run",
            "--cloud",
            "aws",
            "--aws-endpoint-url",
            &moto.endpoint,
            "--kubeconfig",
            c.cluster.kubeconfig_path().to_str().unwrap(),
            "--namespace",
            NS,
            "--metrics-addr",
            "127.0.0.1:0",
            "--resync-interval",
            "2s",
            "--pending-requeue",
            "500ms",
            "--log-format",
            "json",
        ])
        // Debug logs from every crate, and credentials of this run's own: neither the
        // secret key nor the session token may appear in the log.
        .env("RUST_LOG", "debug")
        .env("AWS_ACCESS_KEY_ID", "AKIAAUDITTRAILTEST01")
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .kill_on_drop(true)
        .spawn()
        .expect("the operator binary starts");

    let manifest = c.home.join("network.yaml");
    std::fs::write(&manifest, network_manifest()).unwrap();
    c.kubectl_ok(&["apply", "-n", NS, "-f", manifest.to_str().unwrap()])
        .await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &format!("hnet/{NAME}"),
        "-n",
        NS,
        "--timeout=120s",
    ])
    .await;
    let api = Api::<HipaaNetwork>::namespaced(c.client(), NS);
    let sg = api
        .get(NAME)
        .await
        .unwrap()
        .status
        .unwrap()
        .bastion_security_group_id
        .unwrap();

    // SSH opened to the world behind the operator's back (not recorded: not the operator's).
    let config = sdk_config("us-east-1", Some(&moto.endpoint)).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    moto.stop_recording();
    ec2.authorize_security_group_ingress()
        .group_id(&sg)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    moto.start_recording();
    eventually(Duration::from_secs(60), "the drift remediated", || async {
        let remediated = api
            .get(NAME)
            .await
            .ok()?
            .status?
            .common
            .drift
            .iter()
            .any(|d| d.resource == "sg/bastion");
        remediated.then_some(())
    })
    .await;
    c.kubectl_ok(&["delete", "hnet", NAME, "-n", NS, "--timeout=120s"])
        .await;
    operator.start_kill().unwrap();
    operator.wait().await.unwrap();
    moto.stop_recording();

    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.len() > 10_000, "the debug log was written");
    for secret in [SECRET_KEY, SESSION_TOKEN] {
        assert!(!log.contains(secret), "a credential is in the log");
    }
    let audited = audit_lines(&log);
    let all_requests = moto.recorded();
    // What a role with only the generated policy must be allowed: every request the
    // operator made, reads included.
    crate::common::iam::assert_allows_all(
        &crate::common::iam::operator_policy(),
        all_requests.keys().map(|(s, o)| (s.as_str(), o.as_str())),
        "the operator's requests in moto's log",
    );
    let recorded: BTreeMap<(String, String), u64> = all_requests
        .into_iter()
        .filter(|((_, op), _)| is_mutating(op))
        .collect();
    let audited_counts: BTreeMap<(String, String), u64> = audited
        .iter()
        .map(|(k, lines)| (k.clone(), lines.len() as u64))
        .collect();
    println!("mutating requests in moto's log, by operation:");
    for ((service, operation), n) in &recorded {
        println!("  {service}:{operation:<36} {n:>3}");
    }
    assert_eq!(
        audited_counts, recorded,
        "audit lines per operation (left) == moto's mutating requests (right)"
    );
    assert!(recorded.values().sum::<u64>() >= 30, "{recorded:?}");

    let lines: Vec<&Value> = audited.values().flatten().collect();
    let mut reasons = std::collections::BTreeSet::new();
    for line in &lines {
        assert_eq!(line["kind"], "HipaaNetwork", "{line}");
        assert_eq!(line["namespace"], NS, "{line}");
        assert_eq!(line["name"], NAME, "{line}");
        assert!(
            !line["node"].as_str().unwrap_or_default().is_empty(),
            "{line}"
        );
        assert_eq!(line["level"], "INFO");
        assert!(
            line["span"]["trace_id"]
                .as_str()
                .is_some_and(|t| t.len() == 32),
            "the reconcile's trace id: {line}"
        );
        reasons.insert(line["reason"].as_str().unwrap_or_default().to_string());
    }
    for reason in ["create", "drift-remediation", "delete"] {
        assert!(reasons.contains(reason), "{reason} in {reasons:?}");
    }
    // The remediation is the revoke of the rule opened behind the operator's back.
    let revoke = &audited[&("ec2".to_string(), "RevokeSecurityGroupIngress".to_string())];
    assert!(
        revoke
            .iter()
            .any(|l| l["reason"] == "drift-remediation" && l["resource_id"] == sg.as_str()),
        "{revoke:?}"
    );
    let with_request_id = lines
        .iter()
        .filter(|l| !l["request_id"].as_str().unwrap_or_default().is_empty())
        .count();
    println!(
        "{} audit lines, {with_request_id} with AWS's request id, reasons {reasons:?}",
        lines.len()
    );
    // Read calls are never audited.
    assert!(audited.keys().all(|(_, op)| is_mutating(op)));
    c.stop().await;
}
