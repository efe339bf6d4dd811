//! `hipaa-operator demo`: the devcluster, the simulated AWS and the operator in one
//! process; applies the example stack, shows progress, makes an out-of-band edit and shows
//! the drift found, reported and remediated.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use serde::Deserialize;

use crate::api::{DriftAction, HipaaNetwork, PaymentPipeline};
use crate::cloud::SgRule;
use crate::cloud::any::AnyCloud;
use crate::cloud::sim::{SimCloud, SimConfig};
use crate::controller::status::{READY, condition};
use crate::controller::{Regions, Settings};
use crate::daemon::{self, RunOptions};
use crate::devcluster::{DevCluster, Options};

/// The stack the demo applies (the HipaaNetwork documents of it).
pub const STACK: &str = include_str!("../examples/stack.yaml");
const NAMESPACE: &str = "clinic";

#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Simulated AWS latencies x this (1.0 = real AWS: NAT gateways take ~90 s).
    pub time_scale: f64,
    /// The operator's resync interval (the bound on drift detection).
    pub resync: Duration,
    /// Stop with status 0 after the drift round instead of serving until Ctrl-C.
    pub exit_when_ready: bool,
    /// Address of the devcluster (port 0: any free port).
    pub listen: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// Give up (exit 1) when the stack is not Ready, or the drift not remediated, by then.
    pub timeout: Duration,
}

/// Prints a line with the time since the demo started.
struct Log {
    started: Instant,
}

impl Log {
    fn line(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{:>6.1}s  {}",
            self.started.elapsed().as_secs_f64(),
            text.as_ref()
        );
        let _ = out.flush();
    }
}

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let log = Log {
        started: Instant::now(),
    };
    let cluster = DevCluster::start(Options {
        listen: options.listen,
        ..Options::default()
    })
    .await?;
    let client = cluster.client();
    let kubeconfig = cluster.kubeconfig_path().display().to_string();
    log.line(format!("devcluster serving at {}", cluster.url()));

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crate::api::crds() {
        crds.create(&PostParams::default(), &crd)
            .await
            .context("installing the CRDs")?;
    }
    log.line(
        "installed the hipaa.dev CRDs (HipaaNetwork, HipaaBackend, HipaaEdge, PaymentPipeline)",
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(NAMESPACE.into()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await?;

    let sim = SimCloud::new(SimConfig {
        time_scale: options.time_scale,
        ..SimConfig::default()
    });
    let sim_for_regions = sim.clone();
    let clouds = Regions::new(move |region| {
        if region == sim_for_regions.region() {
            AnyCloud::Sim(sim_for_regions.clone())
        } else {
            AnyCloud::Sim(SimCloud::with_region(SimConfig::default(), region))
        }
    });
    let settings = Settings {
        resync: options.resync,
        pending_requeue: Duration::from_secs_f64((5.0 * options.time_scale).clamp(0.2, 5.0)),
        backoff_base: Duration::from_secs(1),
        backoff_cap: Duration::from_secs(30),
        ..Settings::default()
    };
    let run_options = RunOptions {
        settings,
        metrics_addr: options.metrics_addr,
        election: None,
        identity: "hipaa-operator-demo".into(),
    };
    let operator = daemon::spawn(client.clone(), clouds, &run_options).await?;
    let running = &operator.running;
    log.line(format!(
        "operator running on the simulated AWS (latencies x {}, resync every {} s); metrics at http://{}/metrics",
        options.time_scale,
        options.resync.as_secs(),
        running.metrics_addr
    ));

    let networks: Vec<HipaaNetwork> = serde_yaml_ng::Deserializer::from_str(STACK)
        .filter_map(|doc| serde_yaml_ng::Value::deserialize(doc).ok())
        .filter(|v| v.get("kind").and_then(|k| k.as_str()) == Some("HipaaNetwork"))
        .map(serde_yaml_ng::from_value)
        .collect::<Result<_, _>>()
        .context("reading the HipaaNetwork of examples/stack.yaml")?;
    let pipelines: Vec<PaymentPipeline> = serde_yaml_ng::Deserializer::from_str(STACK)
        .filter_map(|doc| serde_yaml_ng::Value::deserialize(doc).ok())
        .filter(|v| v.get("kind").and_then(|k| k.as_str()) == Some("PaymentPipeline"))
        .map(serde_yaml_ng::from_value)
        .collect::<Result<_, _>>()
        .context("reading the PaymentPipeline of examples/stack.yaml")?;
    let api: Api<HipaaNetwork> = Api::namespaced(client.clone(), NAMESPACE);
    let pipeline_api: Api<PaymentPipeline> = Api::namespaced(client.clone(), NAMESPACE);
    for net in &networks {
        api.create(&PostParams::default(), net).await?;
        log.line(format!(
            "applied HipaaNetwork {NAMESPACE}/{}",
            net.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    for pipeline in &pipelines {
        pipeline_api
            .create(&PostParams::default(), pipeline)
            .await?;
        log.line(format!(
            "applied PaymentPipeline {NAMESPACE}/{} (it waits for its network; HipaaBackend and HipaaEdge have no controller yet)",
            pipeline.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    println!();
    println!("In another terminal:");
    println!("  export KUBECONFIG={kubeconfig}");
    println!("  kubectl get hnet -n {NAMESPACE} -w");
    println!("  kubectl describe hnet -n {NAMESPACE}");
    println!("  kubectl get events -n {NAMESPACE} -w");
    println!(
        "  curl -s http://{}/metrics | grep hipaa_operator_",
        running.metrics_addr
    );
    println!();

    let Some(first) = networks.first() else {
        bail!("examples/stack.yaml has no HipaaNetwork");
    };
    let name = first.metadata.name.clone().unwrap_or_default();
    // What the operator will build (the blueprint is pure: no AWS call).
    let owner = crate::cloud::Owner {
        kind: "HipaaNetwork".into(),
        namespace: NAMESPACE.into(),
        name: name.clone(),
    };
    if let Ok(graph) = crate::blueprint::network::build(&owner, &first.spec) {
        log.line(format!(
            "planned: {} AWS resources, created in dependency order as AWS makes each available:",
            graph.nodes.len()
        ));
        for node in &graph.nodes {
            let after: Vec<String> = node.dependencies().into_iter().collect();
            log.line(format!(
                "planned  {:<28} {:<26} after {}",
                node.kind().type_name(),
                node.key,
                if after.is_empty() {
                    "-".to_string()
                } else {
                    after.join(", ")
                }
            ));
        }
    }
    let deadline = Instant::now() + options.timeout;
    let result = async {
        let ready = watch_until_ready(&api, &name, &log, deadline).await?;
        for pipeline in &pipelines {
            let name = pipeline.metadata.name.clone().unwrap_or_default();
            pipeline_until_ready(&pipeline_api, &name, &log, deadline).await?;
        }
        drift_round(&api, &client, &sim, &ready, &log, deadline).await
    }
    .await;
    if result.is_ok() && !options.exit_when_ready {
        log.line("the operator keeps reconciling; Ctrl-C stops the demo");
        daemon::shutdown_signal().await;
    }
    operator.stop().await;
    cluster.shutdown().await;
    result
}

/// Prints each AWS resource as its state changes, until the object is Ready.
async fn watch_until_ready(
    api: &Api<HipaaNetwork>,
    name: &str,
    log: &Log,
    deadline: Instant,
) -> anyhow::Result<HipaaNetwork> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let net = api.get(name).await?;
        let status = net.status.clone().unwrap_or_default();
        for r in &status.common.resources {
            let state = r.state.clone().unwrap_or_default();
            if seen.get(&r.node) != Some(&state) {
                let verb = if seen.contains_key(&r.node) {
                    "now"
                } else {
                    "created"
                };
                log.line(format!(
                    "{verb:<8} {:<28} {:<26} {:<24} {state}",
                    r.type_,
                    r.node,
                    r.id.as_deref().unwrap_or("-")
                ));
                seen.insert(r.node.clone(), state);
            }
        }
        if let Some(ready) = condition(&status.common.conditions, READY)
            && ready.status == "True"
        {
            log.line(format!(
                "Ready: {} AWS resources; VPC {}, bastion {} ({}); compliance: {}",
                status.common.resources.len(),
                status.vpc_id.as_deref().unwrap_or("-"),
                status.bastion_instance_id.as_deref().unwrap_or("-"),
                status
                    .bastion_public_ip
                    .as_deref()
                    .unwrap_or("no public IP"),
                status
                    .common
                    .compliance
                    .iter()
                    .map(|c| format!("{} {:?}", c.id, c.result))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Ok(net);
        }
        if Instant::now() > deadline {
            bail!(
                "HipaaNetwork {name} was not Ready in time: {:?}",
                status.common.conditions
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Prints the pipeline's AWS resources as they appear, until it is Ready.
async fn pipeline_until_ready(
    api: &Api<PaymentPipeline>,
    name: &str,
    log: &Log,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let status = api.get(name).await?.status.unwrap_or_default();
        for r in &status.common.resources {
            let state = r.state.clone().unwrap_or_default();
            if seen.get(&r.node) != Some(&state) {
                let verb = if seen.contains_key(&r.node) {
                    "now"
                } else {
                    "created"
                };
                log.line(format!("{verb:<8} {:<28} {:<26} {state}", r.type_, r.node));
                seen.insert(r.node.clone(), state);
            }
        }
        if condition(&status.common.conditions, READY).is_some_and(|c| c.status == "True") {
            log.line(format!(
                "PaymentPipeline Ready: {} AWS resources; queue {}, table {}; compliance: {}",
                status.common.resources.len(),
                status.queue_url.as_deref().unwrap_or("-"),
                status.table_name.as_deref().unwrap_or("-"),
                status
                    .common
                    .compliance
                    .iter()
                    .map(|c| format!("{} {:?}", c.id, c.result))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "PaymentPipeline {name} was not Ready in time: {:?}",
                status.common.conditions
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Opens SSH to the world on the bastion's security group behind the operator's back,
/// then shows the drift found, reported and remediated.
async fn drift_round(
    api: &Api<HipaaNetwork>,
    client: &kube::Client,
    sim: &SimCloud,
    ready: &HipaaNetwork,
    log: &Log,
    deadline: Instant,
) -> anyhow::Result<()> {
    let name = ready.metadata.name.clone().unwrap_or_default();
    let Some(sg) = ready
        .status
        .as_ref()
        .and_then(|s| s.bastion_security_group_id.clone())
    else {
        bail!("the Ready HipaaNetwork reports no bastion security group");
    };
    sim.authorize_ingress(&sg, SgRule::tcp(22, 22, "0.0.0.0/0"))
        .map_err(|e| anyhow::anyhow!("editing the simulated security group: {e}"))?;
    let edited = Instant::now();
    log.line(format!(
        "out-of-band edit: opened SSH (tcp/22) to 0.0.0.0/0 on the bastion security group {sg}, as a console user might"
    ));
    let mut shown_drift = false;
    loop {
        let net = api.get(&name).await?;
        let drift = net
            .status
            .as_ref()
            .map(|s| s.common.drift.clone())
            .unwrap_or_default();
        if !drift.is_empty() && !shown_drift {
            shown_drift = true;
            for d in &drift {
                log.line(format!(
                    "drift found {:.1}s after the edit: {} {}: {} -> {:?}",
                    edited.elapsed().as_secs_f64(),
                    d.resource,
                    d.field,
                    d.change,
                    d.action
                ));
            }
        }
        let open = sim
            .ingress_rules(&sg)
            .is_some_and(|rules| rules.iter().any(|r| r.source == "0.0.0.0/0"));
        if shown_drift && !open && drift.iter().all(|d| d.action == DriftAction::Remediated) {
            log.line(format!(
                "remediated: the rule is gone from {sg} on AWS ({:.1}s after the edit)",
                edited.elapsed().as_secs_f64()
            ));
            break;
        }
        if Instant::now() > deadline {
            bail!("the drift on {sg} was not remediated in time");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The pass writes its status before it publishes its events, so the events can lag
    // the remediation seen above by a moment: wait for both.
    let events: Api<CoreEvent> = Api::namespaced(client.clone(), NAMESPACE);
    let list = loop {
        let list = events.list(&ListParams::default()).await?;
        let has = |reason: &str| {
            list.items
                .iter()
                .any(|e| e.reason.as_deref() == Some(reason))
        };
        if has("DriftDetected") && has("DriftRemediated") {
            break list;
        }
        if Instant::now() > deadline {
            bail!("no DriftDetected and DriftRemediated events for the remediated drift");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for e in list.items.iter().filter(|e| {
        matches!(
            e.reason.as_deref(),
            Some("DriftDetected" | "DriftRemediated")
        )
    }) {
        log.line(format!(
            "event {:<8} {:<16} {}",
            e.type_.as_deref().unwrap_or_default(),
            e.reason.as_deref().unwrap_or_default(),
            e.message.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}
