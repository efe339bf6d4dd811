//! `hipaa-operator`: the command line.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hipaa_operator::api;

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
        /// Address to serve on. Loopback is served over plain HTTP; any other address over
        /// TLS with a self-signed certificate written next to the kubeconfig.
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
        Command::Validate { files } => validate(&files),
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
        let text = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            text
        } else {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        };
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
