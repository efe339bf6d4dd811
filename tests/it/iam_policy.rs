//! The README's IAM policy commands, run as written: the operator prints its policy and
//! the AWS CLI creates it as a managed policy (on moto, which validates the document as
//! IAM does: its grammar, action and resource syntax). That every call the operator
//! makes is allowed is checked where the calls are made (the contract on moto and the
//! audit trail's end-to-end run, from moto's request log).

use std::process::Command;

use crate::common::{self, repo};

/// The lines of the README's `sh` block that runs `iam-policy`.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .skip(1)
        .map(|rest| rest.split("\n```").next().unwrap())
        .find(|block| block.contains("iam-policy"))
        .expect("the README shows how to get the IAM policy");
    block.lines().map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_iam_policy_commands_create_the_policy_on_moto() {
    let _moto = common::moto_shared().await;
    let commands = readme_commands();
    assert_eq!(commands.len(), 2, "{commands:?}");
    let dir = std::env::temp_dir().join(format!("iam-policy-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = env!("CARGO_BIN_EXE_hipaa-operator");
    let mut created = None;
    for command in &commands {
        // `cargo run --` is the binary this test was built with.
        let line = command.replacen("cargo run --", binary, 1);
        let out = Command::new("sh")
            .args(["-c", &line])
            .current_dir(&dir)
            .env("AWS_ENDPOINT_URL", crate::contract::moto_endpoint())
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if command.starts_with("aws ") {
            created = Some(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap());
        }
    }
    let created = created.expect("the AWS CLI answered");
    let arn = created["Policy"]["Arn"].as_str().unwrap().to_string();
    assert!(arn.ends_with(":policy/hipaa-operator"), "{created}");

    // What IAM stores is what the operator printed.
    let config = hipaa_operator::cloud::aws::sdk_config(
        "us-east-1",
        Some(&crate::contract::moto_endpoint()),
    )
    .await;
    let iam = aws_sdk_iam::Client::new(&config);
    let version = iam
        .get_policy_version()
        .policy_arn(&arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    let stored = version.policy_version().unwrap().document().unwrap();
    // IAM answers the document URL-encoded.
    let stored: String = if stored.trim_start().starts_with('{') {
        stored.to_string()
    } else {
        form_urlencoded::parse(format!("d={stored}").as_bytes())
            .map(|(_, v)| v.into_owned())
            .next()
            .unwrap()
    };
    let printed = std::fs::read_to_string(dir.join("hipaa-operator-policy.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored).unwrap(),
        serde_json::from_str::<serde_json::Value>(&printed).unwrap()
    );
    iam.delete_policy().policy_arn(&arn).send().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_charts_notes_give_the_readmes_iam_policy_commands() {
    let notes = std::fs::read_to_string(repo("charts/hipaa-operator/templates/NOTES.txt")).unwrap();
    for command in readme_commands() {
        // The chart's user runs the operator's binary, not cargo.
        let command = command.replacen("cargo run --", "hipaa-operator", 1);
        assert!(notes.contains(&command), "NOTES.txt lacks {command:?}");
    }
}
