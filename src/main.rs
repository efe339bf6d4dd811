//! `hipaa-operator`: the command line.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hipaa_operator::api;
use hipaa_operator::units::FlagDuration;

/// Builds and keeps a HIPAA-aligned AWS architecture from four Kubernetes custom
/// resources (HipaaNetwork, HipaaBackend, HipaaEdge, PaymentPipeline).
#[derive(Parser, Debug)]
#[command(name = "hipaa-operator", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CustomResourceDefinitions of all four kinds as one multi-document YAML
    /// stream (the content of crds/hipaa.dev.yaml), e.g. `hipaa-operator crds | kubectl apply -f -`.
    Crds,
    /// Print the least-privilege IAM policy the operator's role needs (JSON), generated
    /// from the calls each AWS kind makes; no wildcard actions. Attach it to the role
    /// the operator runs as (IRSA: the role in the service account's annotation).
    IamPolicy,
    /// Check manifests against the hipaa.dev schemas as the API server would (defaults,
    /// bounds, CEL rules, immutable fields, unknown fields) without a cluster. A later
    /// document for the same object is checked as an update of the earlier one. Exits 1
    /// when any object is refused.
    Validate {
        /// Manifest files (multi-document YAML); `-` reads standard input.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
    },
    /// Show what the engine would do for the objects in manifest files, changing nothing:
    /// the AWS resources it would create, update or leave alone, and why. Against the
    /// simulated AWS the plan starts from an empty cloud.
    Plan {
        /// Manifest files (multi-document YAML); `-` reads standard input.
        #[arg(short = 'f', long = "filename", required = true)]
        files: Vec<PathBuf>,
        /// Which AWS to plan against.
        #[arg(long, value_enum, default_value = "sim", env = "HIPAA_CLOUD")]
        cloud: CloudChoice,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
        output: PlanFormat,
        /// Send AWS API calls here instead of AWS (e.g. moto's server).
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        aws_endpoint_url: Option<String>,
    },
    /// Serve an embedded Kubernetes API server (discovery, built-in kinds, CRDs, watch,
    /// apply, schema validation) for kubectl and the operator, until Ctrl-C. Writes a
    /// kubeconfig with a bearer token generated at start.
    Devcluster {
        /// Address to serve on, always over HTTPS (loopback included) with a CA generated
        /// at start and written into the kubeconfig.
        #[arg(
            long,
            default_value = "127.0.0.1:6443",
            env = "HIPAA_DEVCLUSTER_LISTEN"
        )]
        listen: std::net::SocketAddr,
        /// Where to write the kubeconfig (default: devcluster.kubeconfig in the data
        /// directory, or in a new temporary directory).
        #[arg(long, env = "HIPAA_DEVCLUSTER_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// Persist state here, crash-safe; state is in memory when absent.
        #[arg(long, env = "HIPAA_DEVCLUSTER_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Run the operator: watch the hipaa.dev objects of a cluster (kubeconfig or in-cluster
    /// config) and keep AWS as they declare, reporting drift and compliance in status,
    /// events and metrics. Runs until SIGTERM or Ctrl-C.
    Run(Box<RunArgs>),
    /// One command that shows the operator working: starts the devcluster and the
    /// simulated AWS, installs the CRDs, applies examples/stack.yaml, runs the operator,
    /// shows progress, then opens SSH to the world on the bastion behind its back and
    /// shows the drift found and remediated.
    Demo {
        /// End with status 0 after the drift round (for CI) instead of serving until Ctrl-C.
        #[arg(long)]
        exit_when_ready: bool,
        /// Simulated AWS latencies x this (1.0 = real AWS; NAT gateways then take ~90 s).
        #[arg(long, default_value_t = 0.3)]
        time_scale: f64,
        /// Resync interval of the operator (bounds drift detection): 10s, 1m, or seconds.
        #[arg(long, default_value = "10s")]
        resync_interval: FlagDuration,
        /// Address of the devcluster (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Address of /metrics, /healthz, /readyz (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        metrics_addr: std::net::SocketAddr,
        /// Fail (exit 1) when the stack is not Ready and the drift remediated by then.
        #[arg(long, default_value = "5m")]
        timeout: FlagDuration,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Which AWS to drive: the AWS account of the default credential chain, or the
    /// in-memory simulated AWS (state is lost when the process ends).
    #[arg(long, value_enum, default_value = "aws", env = "HIPAA_CLOUD")]
    cloud: CloudChoice,
    /// Send AWS API calls here instead of AWS (e.g. moto's server).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    aws_endpoint_url: Option<String>,
    /// Time between observations of a Ready object: the bound on drift detection.
    /// Durations take units (30s, 500ms, 5m, 1h30m); a bare number is seconds.
    #[arg(long, default_value = "60s", env = "HIPAA_RESYNC_INTERVAL")]
    resync_interval: FlagDuration,
    /// Before looking again at an object waiting on AWS (NAT gateway pending).
    #[arg(long, default_value = "5s", env = "HIPAA_PENDING_REQUEUE")]
    pending_requeue: FlagDuration,
    /// First backoff after a failed reconcile (doubles per failure, jittered).
    #[arg(long, default_value = "5s", env = "HIPAA_BACKOFF_BASE")]
    backoff_base: FlagDuration,
    /// Longest backoff after failed reconciles.
    #[arg(long, default_value = "5m", env = "HIPAA_BACKOFF_CAP")]
    backoff_cap: FlagDuration,
    /// Objects reconciled at once.
    #[arg(long, default_value_t = 4, env = "HIPAA_MAX_CONCURRENT_RECONCILES")]
    max_concurrent_reconciles: u16,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "HIPAA_NAMESPACE")]
    namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080", env = "HIPAA_METRICS_ADDR")]
    metrics_addr: std::net::SocketAddr,
    /// Run as one of several replicas: only the holder of a coordination.k8s.io Lease acts.
    #[arg(long, env = "HIPAA_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the leader Lease.
    #[arg(
        long,
        default_value = "default",
        env = "HIPAA_LEADER_ELECTION_NAMESPACE"
    )]
    leader_election_namespace: String,
    /// Name of the leader Lease.
    #[arg(
        long,
        default_value = "hipaa-operator-leader",
        env = "HIPAA_LEADER_ELECTION_LEASE"
    )]
    leader_election_lease: String,
    /// How long a leader's lease lasts without renewal: a standby takes over this long
    /// after the leader dies.
    #[arg(
        long,
        default_value = "15s",
        env = "HIPAA_LEADER_ELECTION_LEASE_DURATION"
    )]
    leader_election_lease_duration: FlagDuration,
    /// This replica's name in the lease and events (default: POD_NAME, else host name
    /// plus a random suffix).
    #[arg(long, env = "HIPAA_IDENTITY")]
    identity: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "json", env = "HIPAA_LOG_FORMAT")]
    log_format: hipaa_operator::telemetry::LogFormat,
    /// Export the reconcile spans over OTLP/HTTP to this collector (base URL, plain
    /// http://, e.g. http://otel-collector:4318; `/v1/traces` is added). Off when unset.
    /// Each pass is one trace whose id is the status's and events' traceId.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// The OTLP/HTTP encoding.
    #[arg(
        long,
        value_enum,
        default_value = "http/protobuf",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL"
    )]
    otlp_protocol: hipaa_operator::telemetry::otlp::OtlpProtocol,
    /// The exported spans' service.name.
    #[arg(long, default_value = "hipaa-operator", env = "OTEL_SERVICE_NAME")]
    otlp_service_name: String,
    /// Kubeconfig to use (default: KUBECONFIG, ~/.kube/config, else the in-cluster config).
    #[arg(long, env = "HIPAA_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Minimum log retention in days for compliance control LOG-1.
    #[arg(long, default_value_t = 365, env = "HIPAA_MIN_LOG_RETENTION_DAYS")]
    min_log_retention_days: i32,
    /// With `--cloud sim`: simulated AWS latencies x this (1.0 = real AWS).
    #[arg(long, default_value_t = 0.05, env = "HIPAA_SIM_TIME_SCALE")]
    sim_time_scale: f64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum CloudChoice {
    /// The in-memory simulated AWS (starts empty).
    Sim,
    /// The AWS account of the default credential chain (read-only for `plan`).
    Aws,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum PlanFormat {
    Table,
    Json,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // The Kubernetes client, the devcluster and the AWS SDK all use rustls on ring (the
    // only crypto backend compiled in); name it as the process-wide one all the same, so
    // a dependency enabling another backend cannot leave rustls without a default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Devcluster {
            listen,
            kubeconfig,
            data_dir,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(devcluster(listen, kubeconfig, data_dir))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Crds => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(api::crds_yaml().as_bytes())?;
            stdout.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::IamPolicy => {
            let policy = hipaa_operator::cloud::iam_policy::policy();
            let mut stdout = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut stdout, &policy)?;
            writeln!(stdout)?;
            stdout.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { files } => validate(&files),
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            match runtime.block_on(run(*args)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(error) => {
                    eprintln!("hipaa-operator: {error:#}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Demo {
            exit_when_ready,
            time_scale,
            resync_interval,
            listen,
            metrics_addr,
            timeout,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            if std::env::var_os("RUST_LOG").is_some() {
                hipaa_operator::telemetry::init_tracing(hipaa_operator::telemetry::LogFormat::Text);
            }
            let options = hipaa_operator::demo::DemoOptions {
                time_scale,
                resync: resync_interval.0,
                exit_when_ready,
                listen,
                metrics_addr,
                timeout: timeout.0,
            };
            match runtime.block_on(hipaa_operator::demo::run(options)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(error) => {
                    eprintln!("demo failed: {error:#}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Plan {
            files,
            cloud,
            output,
            aws_endpoint_url,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(plan(&files, cloud, output, aws_endpoint_url.as_deref()))
        }
    }
}

/// `run`: tracing (and the OTLP exporter when asked for), then the daemon; the exporter
/// is flushed after the daemon stops.
async fn run(args: RunArgs) -> anyhow::Result<()> {
    let otlp =
        args.otlp_endpoint
            .as_ref()
            .map(|endpoint| hipaa_operator::telemetry::otlp::OtlpConfig {
                endpoint: endpoint.clone(),
                protocol: args.otlp_protocol,
                service_name: args.otlp_service_name.clone(),
            });
    let exporter =
        hipaa_operator::telemetry::init_tracing_with_otlp(args.log_format, otlp.as_ref())?;
    let result = run_daemon(args).await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    result
}

async fn run_daemon(args: RunArgs) -> anyhow::Result<()> {
    use hipaa_operator::cloud::any::AnyCloud;
    use hipaa_operator::cloud::aws::{AwsCloud, sdk_config};
    use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
    use hipaa_operator::controller::{Regions, Settings};
    use hipaa_operator::daemon;
    use std::time::Duration;

    let settings = Settings {
        resync: args.resync_interval.0.max(Duration::from_secs(1)),
        pending_requeue: args.pending_requeue.0,
        backoff_base: args.backoff_base.0,
        backoff_cap: args.backoff_cap.0,
        concurrency: args.max_concurrent_reconciles.max(1),
        namespace: args.namespace.clone(),
        min_log_retention_days: args.min_log_retention_days,
        ..Settings::default()
    };
    let client = match &args.kubeconfig {
        Some(path) => hipaa_operator::devcluster::client_for(path)
            .await
            .with_context(|| format!("loading kubeconfig {}", path.display()))?,
        None => kube::Client::try_default().await.context(
            "no Kubernetes configuration: set KUBECONFIG or --kubeconfig, or run in a cluster",
        )?,
    };
    daemon::check_crds(&client, args.namespace.as_deref()).await?;
    let clouds = match args.cloud {
        CloudChoice::Aws => {
            let config = sdk_config("us-east-1", args.aws_endpoint_url.as_deref()).await;
            daemon::check_aws_credentials(&config).await?;
            Regions::new(move |region| AnyCloud::Aws(AwsCloud::new(&config, region)))
        }
        CloudChoice::Sim => {
            let scale = args.sim_time_scale;
            Regions::new(move |region| {
                AnyCloud::Sim(SimCloud::with_region(
                    SimConfig {
                        time_scale: scale,
                        ..SimConfig::default()
                    },
                    region,
                ))
            })
        }
    };
    let options = daemon::RunOptions {
        settings,
        metrics_addr: args.metrics_addr,
        election: args.leader_election.then(|| daemon::Election {
            namespace: args.leader_election_namespace.clone(),
            lease_name: args.leader_election_lease.clone(),
            lease_duration: args
                .leader_election_lease_duration
                .0
                .max(Duration::from_secs(2)),
        }),
        identity: args
            .identity
            .clone()
            .unwrap_or_else(daemon::default_identity),
    };
    daemon::run(client, clouds, options, daemon::shutdown_signal()).await
}

fn read_input(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

async fn plan(
    files: &[PathBuf],
    cloud: CloudChoice,
    output: PlanFormat,
    endpoint: Option<&str>,
) -> anyhow::Result<ExitCode> {
    use hipaa_operator::cloud::aws::{AwsCloud, sdk_config};
    use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
    let note = match cloud {
        CloudChoice::Sim => {
            "simulated AWS: planned from an empty cloud (nothing exists yet), nothing was changed"
        }
        CloudChoice::Aws => {
            "AWS: planned against the live account with read-only calls, nothing was changed"
        }
    };
    let mut plans = Vec::new();
    for file in files {
        let text = read_input(file)?;
        let planned = match cloud {
            CloudChoice::Sim => {
                let config = SimConfig {
                    time_scale: 0.0,
                    ..SimConfig::default()
                };
                hipaa_operator::plan::plan_stream(&text, |region: &str| {
                    SimCloud::with_region(config.clone(), region)
                })
                .await
            }
            CloudChoice::Aws => {
                let config = sdk_config("us-east-1", endpoint).await;
                hipaa_operator::plan::plan_stream(&text, |region: &str| {
                    AwsCloud::new(&config, region)
                })
                .await
            }
        };
        plans.extend(planned.map_err(anyhow::Error::msg)?);
    }
    match output {
        PlanFormat::Table => print!("{}", hipaa_operator::plan::render_table(&plans, note)),
        PlanFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&hipaa_operator::plan::render_json(&plans, note))?
        ),
    }
    let failed = plans
        .iter()
        .any(|p| matches!(p.result, hipaa_operator::plan::PlanResult::Failed(_)));
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn validate(files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let checker = api::manifests::Checker::new()?;
    let (mut checked, mut refused) = (0usize, 0usize);
    for file in files {
        let text = read_input(file)?;
        for verdict in checker.check_stream(&text) {
            checked += 1;
            let what = if verdict.update { "update of " } else { "" };
            if verdict.accepted() {
                println!("{}: {what}{} accepted", file.display(), verdict.object);
            } else {
                refused += 1;
                println!("{}: {what}{} refused:", file.display(), verdict.object);
                for error in &verdict.errors {
                    println!("  - {error}");
                }
            }
        }
    }
    if refused > 0 {
        eprintln!("{refused} of {checked} objects refused");
        return Ok(ExitCode::FAILURE);
    }
    if checked == 0 {
        eprintln!("no hipaa.dev objects found");
    }
    Ok(ExitCode::SUCCESS)
}

async fn devcluster(
    listen: std::net::SocketAddr,
    kubeconfig: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cluster =
        hipaa_operator::devcluster::DevCluster::start(hipaa_operator::devcluster::Options {
            listen,
            kubeconfig,
            data_dir,
        })
        .await?;
    println!("devcluster serving at {}", cluster.url());
    println!("kubeconfig: {}", cluster.kubeconfig_path().display());
    println!(
        "  export KUBECONFIG={}",
        cluster.kubeconfig_path().display()
    );
    println!("  kubectl apply -f crds/ && kubectl get hipaa -A");
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    cluster.shutdown().await;
    Ok(())
}
