//! `hipaa-operator run` and `demo` as processes, the way users run them: against the
//! devcluster (driven by the real kubectl) and moto's server (AWS through the SDK).
//! Killing a process (SIGKILL) is real here, so are crash recovery and leader failover.
//!
//! Each test uses its own namespace, so its AWS resources carry their own owner tag in the
//! moto account the tests share (`common::moto_shared`).

use crate::common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{Filter, IpPermission, IpRange};
use common::{Cluster, eventually, http_get, metric};
use hipaa_operator::api::{DriftAction, HipaaNetwork};
use hipaa_operator::cloud::aws::{AwsCloud, sdk_config};
use hipaa_operator::cloud::{Owner, Provider, TAG_OWNER};
use hipaa_operator::controller::status::{SYNCED, condition};
use kube::api::Api;
use tokio::process::{Child, Command};

const NAME: &str = "clinic-net";

fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").expect(
        "moto is required: run the tests through .ci/with-moto, which starts moto's server and sets MOTO_ENDPOINT",
    )
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// An operator process; its log goes to a file shown when a test fails.
struct Operator {
    child: Child,
    metrics: SocketAddr,
    log: PathBuf,
}

impl Operator {
    fn start(c: &Cluster, namespace: &str, extra: &[&str]) -> Operator {
        let metrics = free_addr();
        let log = c
            .home
            .join(format!("operator-{}.log", uuid::Uuid::new_v4().simple()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
            .args([
                "run",
                "--cloud",
                "aws",
                "--aws-endpoint-url",
                &moto_endpoint(),
                "--kubeconfig",
                c.cluster.kubeconfig_path().to_str().unwrap(),
                "--namespace",
                namespace,
                "--metrics-addr",
                &metrics.to_string(),
                // Units as Kubernetes controllers' flags take them, and a bare number
                // (seconds) as before.
                "--resync-interval",
                "3s",
                "--pending-requeue",
                "500ms",
                "--backoff-base",
                "0.5",
                "--backoff-cap",
                "5s",
                "--log-format",
                "text",
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("the operator binary starts");
        Operator {
            child,
            metrics,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn metrics(&self) -> Option<String> {
        let (code, body) = tokio::time::timeout(Duration::from_secs(2), async {
            match tokio::net::TcpStream::connect(self.metrics).await {
                Ok(_) => Some(http_get(self.metrics, "/metrics").await),
                Err(_) => None,
            }
        })
        .await
        .ok()??;
        (code == 200).then_some(body)
    }

    /// SIGKILL: no shutdown code runs.
    async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// Sum of `hipaa_operator_aws_api_calls_total` over all label sets.
fn aws_calls(text: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with("hipaa_operator_aws_api_calls_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn owner(namespace: &str) -> Owner {
    Owner {
        kind: "HipaaNetwork".into(),
        namespace: namespace.into(),
        name: NAME.into(),
    }
}

async fn cluster(namespace: &str) -> Cluster {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace(namespace).await;
    c
}

/// The HipaaNetwork of examples/stack.yaml.
async fn apply_example(c: &Cluster, namespace: &str) {
    let network = c.example_file("HipaaNetwork");
    c.kubectl_ok(&["apply", "-n", namespace, "-f", network.to_str().unwrap()])
        .await;
}

async fn wait_ready(c: &Cluster, namespace: &str, operators: &[&Operator]) {
    let out = c
        .kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("hnet/{NAME}"),
            "-n",
            namespace,
            "--timeout=120s",
        ])
        .await;
    if !out.status.success() {
        let logs: Vec<String> = operators.iter().map(|o| o.log()).collect();
        panic!(
            "not Ready: {}\noperator logs:\n{}",
            common::stderr(&out),
            logs.join("\n-----\n")
        );
    }
}

async fn moto() -> (aws_sdk_ec2::Client, AwsCloud) {
    let config = sdk_config("us-east-1", Some(&moto_endpoint())).await;
    (
        aws_sdk_ec2::Client::new(&config),
        AwsCloud::new(&config, "us-east-1"),
    )
}

async fn get(c: &Cluster, namespace: &str) -> HipaaNetwork {
    Api::<HipaaNetwork>::namespaced(c.client(), namespace)
        .get(NAME)
        .await
        .unwrap()
}

/// Ids of the VPCs tagged with `HipaaNetwork/<namespace>/clinic-net`.
async fn vpcs_of(ec2: &aws_sdk_ec2::Client, namespace: &str) -> Vec<String> {
    let out = ec2
        .describe_vpcs()
        .filters(
            Filter::builder()
                .name(format!("tag:{TAG_OWNER}"))
                .values(owner(namespace).to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.vpcs()
        .iter()
        .filter_map(|v| v.vpc_id().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_apply_is_ready_drift_is_remediated_within_a_resync_and_delete_leaves_nothing() {
    let _moto = common::moto_shared().await;
    let ns = "moto-lifecycle";
    let c = cluster(ns).await;
    let op = Operator::start(&c, ns, &[]);
    apply_example(&c, ns).await;
    let applied = Instant::now();
    wait_ready(&c, ns, &[&op]).await;
    println!("moto: Ready {:?} after kubectl apply", applied.elapsed());
    let (ec2, aws) = moto().await;
    let status = get(&c, ns).await.status.unwrap();
    assert_eq!(
        vpcs_of(&ec2, ns).await,
        vec![status.vpc_id.clone().unwrap()],
        "the VPC in status is the one on AWS"
    );
    assert_eq!(status.common.resources.len(), 20);
    // The pass that wrote this status logged under its trace id.
    let trace = status
        .common
        .trace_id
        .clone()
        .expect("the status names its pass");
    assert!(
        op.log().contains(&format!("trace_id={trace}")),
        "the trace id {trace} of the pass is in its log lines:\n{}",
        op.log()
    );

    // Out-of-band, with the SDK as a console user would: SSH open to the world.
    let sg = status.bastion_security_group_id.clone().unwrap();
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
    let edited = Instant::now();
    let entry = eventually(Duration::from_secs(15), "drift in status", || async {
        get(&c, ns)
            .await
            .status?
            .common
            .drift
            .into_iter()
            .find(|d| d.resource == "sg/bastion")
    })
    .await;
    println!(
        "moto: drift in status {:?} after the edit (resync 3 s)",
        edited.elapsed()
    );
    assert_eq!(entry.action, DriftAction::Remediated, "{entry:?}");
    let open = ec2
        .describe_security_groups()
        .group_ids(&sg)
        .send()
        .await
        .unwrap();
    let world = open.security_groups()[0]
        .ip_permissions()
        .iter()
        .flat_map(|p| p.ip_ranges())
        .any(|r| r.cidr_ip() == Some("0.0.0.0/0"));
    assert!(!world, "remediated on AWS");
    let events = c
        .kubectl_ok(&["get", "events", "-n", ns, "-o", "json"])
        .await;
    assert!(events.contains("DriftDetected") && events.contains("DriftRemediated"));
    let text = op.metrics().await.unwrap();
    assert_eq!(
        metric(
            &text,
            "hipaa_operator_drift_detected_total{kind=\"HipaaNetwork\",resource_type=\"ec2:security-group\"}"
        ),
        Some(1.0)
    );
    assert!(
        metric(&text, "hipaa_operator_aws_api_calls_total{operation=\"RevokeSecurityGroupIngress\",outcome=\"ok\",service=\"ec2\"}")
            .is_some_and(|n| n >= 1.0),
        "{text}"
    );

    c.kubectl_ok(&[
        "patch",
        "hnet",
        NAME,
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"deletionPolicy":"Delete"}}"#,
    ])
    .await;
    let out = c
        .kubectl(&["delete", "hnet", NAME, "-n", ns, "--timeout=120s"])
        .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        common::stderr(&out),
        op.log()
    );
    let owner = owner(ns);
    assert_eq!(
        aws.owned(&owner).await.unwrap(),
        vec![],
        "nothing tagged with the object remains on AWS"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_converge_and_restarted_it_converges_without_duplicates() {
    let _moto = common::moto_shared().await;
    let ns = "moto-crash";
    let c = cluster(ns).await;
    let (ec2, aws) = moto().await;
    let mut op = Operator::start(&c, ns, &[]);
    apply_example(&c, ns).await;
    // Kill as soon as AWS has the VPC: creates are under way, no status written yet.
    eventually(Duration::from_secs(30), "the first VPC on AWS", || async {
        (!vpcs_of(&ec2, ns).await.is_empty()).then_some(())
    })
    .await;
    op.kill().await;
    let status_at_kill = get(&c, ns)
        .await
        .status
        .map(|s| s.common.resources.len())
        .unwrap_or(0);
    let before: usize = aws.owned(&owner(ns)).await.unwrap().len();
    println!("killed with {before} resources on AWS and {status_at_kill} in status");
    assert!(
        before < 20 || status_at_kill < 20,
        "the kill landed mid-converge"
    );

    let op = Operator::start(&c, ns, &[]);
    wait_ready(&c, ns, &[&op]).await;
    let owned = aws.owned(&owner(ns)).await.unwrap();
    let mut nodes: Vec<&str> = owned.iter().map(|o| o.node.as_str()).collect();
    nodes.sort();
    let mut unique = nodes.clone();
    unique.dedup();
    assert_eq!(nodes, unique, "one AWS resource per node: {owned:?}");
    assert_eq!(vpcs_of(&ec2, ns).await.len(), 1);
    let status = get(&c, ns).await.status.unwrap();
    for r in &status.common.resources {
        if r.type_ != "ec2:default-security-group" {
            assert!(
                owned.iter().any(|o| Some(&o.id) == r.id.as_ref()),
                "{} in status is on AWS",
                r.node
            );
        }
    }
    drop(op);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_leader_election_only_the_leader_calls_aws_and_a_standby_takes_over() {
    let _moto = common::moto_shared().await;
    let ns = "moto-leader";
    let c = cluster(ns).await;
    let lease_seconds = 4u64;
    let election = |id: &'static str| {
        [
            "--leader-election",
            "--leader-election-namespace",
            ns,
            "--leader-election-lease-duration",
            "4",
            "--identity",
            id,
        ]
    };
    let mut a = Operator::start(&c, ns, &election("replica-a"));
    eventually(Duration::from_secs(15), "replica-a leads", || async {
        (metric(&a.metrics().await?, "hipaa_operator_leader") == Some(1.0)).then_some(())
    })
    .await;
    let b = Operator::start(&c, ns, &election("replica-b"));
    eventually(
        Duration::from_secs(15),
        "replica-b stands by, ready",
        || async {
            let text = b.metrics().await?;
            let (code, body) = http_get(b.metrics, "/readyz").await;
            (code == 200 && metric(&text, "hipaa_operator_leader") == Some(0.0)).then_some(body)
        },
    )
    .await;
    apply_example(&c, ns).await;
    wait_ready(&c, ns, &[&a, &b]).await;
    let leader_calls = aws_calls(&a.metrics().await.unwrap());
    let standby_calls = aws_calls(&b.metrics().await.unwrap());
    println!("AWS calls: leader {leader_calls}, standby {standby_calls}");
    assert!(leader_calls > 0);
    assert_eq!(standby_calls, 0, "the standby makes no AWS call");
    let lease = c
        .kubectl_ok(&[
            "get",
            "lease",
            "hipaa-operator-leader",
            "-n",
            ns,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .await;
    assert_eq!(lease, "replica-a");

    a.kill().await;
    let killed = Instant::now();
    eventually(
        Duration::from_secs(lease_seconds * 3),
        "replica-b takes over",
        || async {
            (metric(&b.metrics().await?, "hipaa_operator_leader") == Some(1.0)).then_some(())
        },
    )
    .await;
    let takeover = killed.elapsed();
    println!(
        "takeover {takeover:?} after the leader was killed (lease {lease_seconds} s, renewed every {:.2} s)",
        lease_seconds as f64 / 3.0
    );
    // Within the lease duration, plus at most one renew period of polling (and 1.5 s for
    // the API calls and process start-up on a loaded 2-core CI machine).
    assert!(
        takeover <= Duration::from_secs_f64(lease_seconds as f64 * 4.0 / 3.0 + 1.5),
        "{takeover:?}"
    );

    // The new leader acts: a spec change reaches AWS.
    c.kubectl_ok(&[
        "patch",
        "hnet",
        NAME,
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"tags":{"cost-center":"c42"}}}"#,
    ])
    .await;
    let (ec2, _) = moto().await;
    let vpc = get(&c, ns).await.status.unwrap().vpc_id.unwrap();
    eventually(
        Duration::from_secs(20),
        "the tag applied by the new leader",
        || async {
            let out = ec2.describe_vpcs().vpc_ids(&vpc).send().await.ok()?;
            out.vpcs()[0]
                .tags()
                .iter()
                .any(|t| t.key() == Some("cost-center"))
                .then_some(())
        },
    )
    .await;
    assert!(aws_calls(&b.metrics().await.unwrap()) > 0);
    let synced = condition(&get(&c, ns).await.status.unwrap().common.conditions, SYNCED)
        .cloned()
        .unwrap();
    assert_eq!(synced.status, "True");
    drop(b);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_to_start_without_crds_or_without_aws_credentials() {
    let c = Cluster::start().await;
    let run = |extra_env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hipaa-operator"));
        command
            .args([
                "run",
                "--kubeconfig",
                c.cluster.kubeconfig_path().to_str().unwrap(),
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/nonexistent/config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", &c.home)
            .kill_on_drop(true);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        command
    };
    let out = tokio::time::timeout(Duration::from_secs(30), run(&[]).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("CRDs are not installed")
            && err.contains("kubectl apply -f crds/hipaa.dev.yaml"),
        "{err}"
    );

    c.install_crds().await;
    let out = tokio::time::timeout(Duration::from_secs(60), run(&[]).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("no AWS credentials"), "{err}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_exit_when_ready_exits_0_after_the_drift_round() {
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
            .args(["demo", "--exit-when-ready"])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the demo ends")
    .unwrap();
    let text = common::stdout(&out);
    assert!(out.status.success(), "{text}\n{}", common::stderr(&out));
    for line in [
        "Ready: 20 AWS resources",
        "PaymentPipeline Ready: 13 AWS resources",
        "LAM-1 Passed",
        "out-of-band edit",
        "drift found",
        "remediated",
        "DriftRemediated",
        "kubectl get hnet -n clinic -w",
    ] {
        assert!(
            text.contains(line),
            "{line:?} not in the demo's output:\n{text}"
        );
    }
}
