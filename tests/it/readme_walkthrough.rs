//! The README's "Try it" walkthrough, run as written against `hipaa-operator devcluster`
//! with the real kubectl and a shell: the commands are read from README.md, not copied
//! here, so the README cannot drift from what works.
//!
//! What is substituted, and only that: `cargo run --` is the built binary (this test
//! does not build again); the devcluster listens on a free port instead of 6443 and
//! writes its kubeconfig into the test's home instead of /tmp (tests run side by side);
//! the operator takes the simulated AWS its line's comment names (`HIPAA_CLOUD=sim`) and a
//! free metrics port (`HIPAA_METRICS_ADDR`), both through the environment. `~/.kube/config`
//! is the devcluster's kubeconfig, copied there, with HOME the test's home.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::repo;
use tokio::process::{Child, Command};

/// The lines of the fenced `sh` block of README.md that contains `marker`.
fn readme_block(marker: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let mut blocks = readme.split("```sh\n").skip(1).map(|rest| {
        rest.split("```")
            .next()
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    blocks
        .find(|block| block.iter().any(|line| line.contains(marker)))
        .unwrap_or_else(|| panic!("README.md has a sh block with {marker:?}"))
}

/// A README line without its trailing comment and `&`, and whether it ran in the
/// background.
fn command_of(line: &str) -> (String, bool) {
    let command = line.split("  #").next().unwrap_or(line).trim();
    match command.strip_suffix('&') {
        Some(background) => (background.trim().to_string(), true),
        None => (command.to_string(), false),
    }
}

struct Walkthrough {
    home: PathBuf,
    kubeconfig: PathBuf,
    listen: String,
    children: Vec<(String, Child, PathBuf)>,
}

impl Walkthrough {
    fn new() -> Self {
        let home =
            std::env::temp_dir().join(format!("readme-home-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&home).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listen = listener.local_addr().unwrap().to_string();
        drop(listener);
        Self {
            kubeconfig: home.join("devcluster.kubeconfig"),
            home,
            listen,
            children: Vec::new(),
        }
    }

    /// The README command with the substitutions this module's doc lists.
    fn substitute(&self, command: &str) -> String {
        command
            .replace("cargo run --", env!("CARGO_BIN_EXE_hipaa-operator"))
            .replace("127.0.0.1:6443", &self.listen)
            .replace(
                "/tmp/devcluster.kubeconfig",
                self.kubeconfig.to_str().unwrap(),
            )
    }

    fn shell(&self, command: &str) -> Command {
        let mut shell = Command::new("sh");
        shell
            .args(["-e", "-c", command])
            .current_dir(repo(""))
            .env("HOME", &self.home)
            .env("KUBECACHEDIR", self.home.join("cache"))
            .env("HIPAA_CLOUD", "sim")
            .env("HIPAA_METRICS_ADDR", "127.0.0.1:0")
            .kill_on_drop(true);
        shell
    }

    /// The logs of the background processes, for a failure message.
    fn logs(&self) -> String {
        self.children
            .iter()
            .map(|(command, _, log)| {
                format!(
                    "--- {command}\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs one README line: `export` sets the variable for the lines after it, a line
    /// ending in `&` starts in the background, any other runs to completion and must
    /// succeed. Returns what a foreground line printed.
    async fn run(&mut self, line: &str, env: &mut Vec<(String, String)>) -> String {
        let (command, background) = command_of(line);
        let command = self.substitute(&command);
        if let Some(assignment) = command.strip_prefix("export ") {
            let (name, value) = assignment.split_once('=').expect("export NAME=value");
            env.push((name.to_string(), value.to_string()));
            return String::new();
        }
        if background {
            let mut shell = self.shell(&format!("exec {command}"));
            shell.envs(env.iter().cloned());
            let log = self
                .home
                .join(format!("background-{}.log", self.children.len()));
            let file = std::fs::File::create(&log).unwrap();
            let child = shell
                .stdout(Stdio::from(file.try_clone().unwrap()))
                .stderr(Stdio::from(file))
                .spawn()
                .expect("sh runs");
            self.children.push((command, child, log));
            return String::new();
        }
        let mut shell = self.shell(&command);
        shell.envs(env.iter().cloned());
        let out = shell.output().await.expect("sh runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "README line failed: {line}\nstdout: {stdout}\nstderr: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        stdout
    }

    /// Waits for the devcluster the README started to write its kubeconfig and answer.
    async fn wait_for_devcluster(&self) {
        for _ in 0..200 {
            if self.kubeconfig.exists() {
                let ready = Command::new("kubectl")
                    .args(["get", "--raw", "/readyz"])
                    .env("KUBECONFIG", &self.kubeconfig)
                    .env("HOME", &self.home)
                    .output()
                    .await
                    .expect("kubectl runs");
                if ready.status.success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the devcluster did not come up:\n{}", self.logs());
    }
}

fn copy_to_kube_config(kubeconfig: &Path, home: &Path) {
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    std::fs::copy(kubeconfig, home.join(".kube/config")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_walkthrough_runs_as_written_against_hipaa_operator_devcluster() {
    let mut w = Walkthrough::new();
    let mut env = Vec::new();
    // "Start the embedded cluster on its own": the devcluster and its KUBECONFIG.
    let devcluster = readme_block("cargo run -- devcluster");
    let (start, rest) = devcluster.split_at(2);
    for line in start {
        w.run(line, &mut env).await;
    }
    w.wait_for_devcluster().await;
    copy_to_kube_config(&w.kubeconfig, &w.home);

    // "Against a cluster (any Kubernetes 1.31+, or `hipaa-operator devcluster`)".
    let walkthrough = readme_block("kubectl create namespace clinic");
    let mut printed = Vec::new();
    for line in &walkthrough {
        printed.push(w.run(line, &mut env).await);
    }
    let printed = printed.concat();
    for expected in [
        "customresourcedefinition.apiextensions.k8s.io/hipaanetworks.hipaa.dev created",
        "namespace/clinic created",
        "hipaanetwork.hipaa.dev/clinic-net created",
        "hipaanetwork.hipaa.dev/clinic-net condition met",
    ] {
        assert!(printed.contains(expected), "{expected:?} in:\n{printed}");
    }
    assert!(
        printed
            .lines()
            .any(|l| l.starts_with("Name:") && l.ends_with(" clinic-net")),
        "kubectl describe printed the object:\n{printed}"
    );
    // Then the devcluster block's last line: every hipaa.dev kind in the cluster.
    let listed: String = {
        let mut out = String::new();
        for line in rest {
            out.push_str(&w.run(line, &mut env).await);
        }
        out
    };
    assert!(
        listed.contains("clinic") && listed.contains("hipaanetwork.hipaa.dev/clinic-net"),
        "{listed}"
    );
    for (_, child, _) in &mut w.children {
        child.start_kill().ok();
        child.wait().await.ok();
    }
    std::fs::remove_dir_all(&w.home).ok();
}
