//! Helpers shared by the integration tests: a devcluster per test, the real kubectl, and
//! turns at moto's server.

pub mod iam;
pub mod moto;

use std::path::{Path, PathBuf};
use std::process::Output;

use hipaa_operator::devcluster::{DevCluster, Options};

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The document of examples/stack.yaml of `kind`, as written.
pub fn example(kind: &str) -> String {
    let stack = std::fs::read_to_string(repo("examples/stack.yaml")).unwrap();
    stack
        .split("\n---")
        .find(|doc| doc.contains(&format!("\nkind: {kind}\n")))
        .unwrap_or_else(|| panic!("examples/stack.yaml has a {kind}"))
        .to_string()
}

/// A devcluster plus a private kubectl home (discovery cache, config), so tests never
/// share state with each other or with the user's ~/.kube.
pub struct Cluster {
    pub cluster: DevCluster,
    pub home: PathBuf,
}

impl Cluster {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let cluster = DevCluster::start(options).await.expect("devcluster starts");
        let home =
            std::env::temp_dir().join(format!("kubectl-home-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&home).unwrap();
        Self { cluster, home }
    }

    pub fn client(&self) -> kube::Client {
        self.cluster.client()
    }

    /// Runs the real kubectl against this cluster.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command(args)
            .output()
            .await
            .expect("kubectl runs")
    }

    pub fn kubectl_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("kubectl");
        command
            .args(args)
            .env("KUBECONFIG", self.cluster.kubeconfig_path())
            .env("HOME", &self.home)
            .env("KUBECACHEDIR", self.home.join("cache"))
            .kill_on_drop(true);
        command
    }

    /// Runs kubectl and panics with its output unless it succeeds; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.status.success(),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Installs the committed CRDs and waits until they are established.
    pub async fn install_crds(&self) {
        self.kubectl_ok(&["apply", "-f", repo("crds").to_str().unwrap()])
            .await;
        self.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=10s",
            "crd",
            "--all",
        ])
        .await;
    }

    /// Creates a namespace with `kubectl apply` (JSON on the wire).
    pub async fn create_namespace(&self, name: &str) {
        let file = self.home.join(format!("namespace-{name}.yaml"));
        std::fs::write(
            &file,
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"),
        )
        .unwrap();
        self.kubectl_ok(&["apply", "-f", file.to_str().unwrap()])
            .await;
    }

    /// A file in this cluster's home with the example's `kind` document, for
    /// `kubectl apply -f` (tests of one kind apply only it: another kind's controller
    /// would hold, for example, the network's deletion).
    pub fn example_file(&self, kind: &str) -> PathBuf {
        let file = self.home.join(format!("example-{kind}.yaml"));
        std::fs::write(&file, example(kind)).unwrap();
        file
    }

    pub async fn stop(self) {
        self.cluster.shutdown().await;
        std::fs::remove_dir_all(&self.home).ok();
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A second, independent kube-rs client (its own connections) for the same cluster.
pub async fn client_of(c: &Cluster) -> kube::Client {
    hipaa_operator::devcluster::client_for(c.cluster.kubeconfig_path())
        .await
        .expect("client")
}

/// GET `path` from an HTTP server on `addr` (HTTP/1.0, no client crate needed):
/// (status code, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// The value of the sample `series` (name with labels, exactly as exposed) in a
/// Prometheus text exposition, if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

/// Polls `check` every 100 ms until it returns Some or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// moto's server is one AWS account with one request log for the whole test binary.
/// `aws_network` compares the operator's call counts with that log, so it holds moto
/// alone; every other test that calls moto shares it. (When each test file was its own
/// binary, cargo ran them one after another, and the log saw one file's calls at a time.)
static MOTO: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A turn at moto shared with the other tests that only call it. Hold it for the whole
/// test, declared first so it is released last (after any operator process is killed).
pub async fn moto_shared() -> tokio::sync::RwLockReadGuard<'static, ()> {
    MOTO.read().await
}

/// moto alone: no other test calls it until the guard is dropped. Waits a second after
/// the last sharing test ended, so that requests an operator process had sent before it
/// was killed have landed in the log before the caller resets it.
pub async fn moto_alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    let guard = MOTO.write().await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    guard
}

/// An operator in this process, against the cluster `c` and the simulated account `sim`
/// (every region), with `settings`; `extend` adds controllers of test-only kinds.
pub async fn sim_operator_with(
    c: &Cluster,
    sim: &hipaa_operator::cloud::sim::SimCloud,
    settings: hipaa_operator::controller::Settings,
    extend: impl FnOnce(hipaa_operator::controller::Runner) -> hipaa_operator::controller::Runner,
) -> hipaa_operator::daemon::Spawned {
    use hipaa_operator::cloud::any::AnyCloud;
    let sim = sim.clone();
    hipaa_operator::daemon::spawn_with(
        c.client(),
        hipaa_operator::controller::Regions::new(move |_| AnyCloud::Sim(sim.clone())),
        &hipaa_operator::daemon::RunOptions {
            settings,
            metrics_addr: "127.0.0.1:0".parse().unwrap(),
            election: None,
            identity: "test-operator".into(),
        },
        extend,
    )
    .await
    .expect("operator starts")
}

/// [`sim_operator_with`] running the operator's own kinds only.
pub async fn sim_operator(
    c: &Cluster,
    sim: &hipaa_operator::cloud::sim::SimCloud,
    settings: hipaa_operator::controller::Settings,
) -> hipaa_operator::daemon::Spawned {
    sim_operator_with(c, sim, settings, |runner| runner).await
}
