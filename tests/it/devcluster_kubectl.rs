//! The real kubectl (v1.32) against the devcluster: the commands platform engineers
//! run, with the outputs they expect from a real API server.

use crate::common;

use std::time::Duration;

use common::{Cluster, repo, stderr, stdout};
use hipaa_operator::api::{HipaaNetwork, HipaaNetworkStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_then_reapply_with_a_change_patches_in_place() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let out = c
        .kubectl_ok(&["apply", "-f", repo("examples").to_str().unwrap()])
        .await;
    assert_eq!(
        out.matches(" created").count(),
        4,
        "all four kinds created: {out}"
    );

    let before: Value = serde_json::from_str(
        &c.kubectl_ok(&["get", "hnet", "clinic-net", "-o", "json"])
            .await,
    )
    .unwrap();
    // Re-apply the stack with one field changed.
    let changed = std::fs::read_to_string(repo("examples/stack.yaml"))
        .unwrap()
        .replace("team: patient-portal", "team: portal-platform");
    let file = c.home.join("stack-changed.yaml");
    std::fs::write(&file, changed).unwrap();
    let out = c.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]).await;
    assert!(
        out.contains("hipaanetwork.hipaa.dev/clinic-net configured"),
        "{out}"
    );
    let after: Value = serde_json::from_str(
        &c.kubectl_ok(&["get", "hnet", "clinic-net", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(
        after["metadata"]["uid"], before["metadata"]["uid"],
        "patched, not re-created"
    );
    assert_eq!(after["spec"]["tags"]["team"], "portal-platform");
    assert_eq!(
        after["metadata"]["generation"], 2,
        "a spec change bumps the generation"
    );
    assert!(
        after["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string(),
        "client-side apply keeps its annotation"
    );
    // Defaults from the schema were applied by the server.
    assert_eq!(after["spec"]["bastion"]["rootVolumeGib"], 8);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_creates_then_patches_and_tracks_managers() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace("ssa").await;
    let out = c
        .kubectl_ok(&[
            "apply",
            "--server-side",
            "-n",
            "ssa",
            "-f",
            repo("examples").to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.matches("serverside-applied").count(), 4, "{out}");
    let changed = std::fs::read_to_string(repo("examples/stack.yaml"))
        .unwrap()
        .replace("instanceType: t3.micro", "instanceType: t3.small");
    let file = c.home.join("stack-ssa.yaml");
    std::fs::write(&file, changed).unwrap();
    c.kubectl_ok(&[
        "apply",
        "--server-side",
        "-n",
        "ssa",
        "-f",
        file.to_str().unwrap(),
    ])
    .await;
    let object: Value = serde_json::from_str(
        &c.kubectl_ok(&[
            "get",
            "hnet",
            "clinic-net",
            "-n",
            "ssa",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await,
    )
    .unwrap();
    assert_eq!(object["spec"]["bastion"]["instanceType"], "t3.small");
    assert_eq!(object["metadata"]["generation"], 2);
    let managers: Vec<&str> = object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert!(
        managers.contains(&"kubectl"),
        "the applier owns its fields: {managers:?}"
    );

    // Another manager changing a field kubectl applied conflicts, unless forced.
    let conflict = c
        .kubectl(&[
            "apply",
            "--server-side",
            "--field-manager",
            "someone-else",
            "-n",
            "ssa",
            "-f",
            repo("examples/stack.yaml").to_str().unwrap(),
        ])
        .await;
    assert!(!conflict.status.success());
    assert!(
        stderr(&conflict).contains("conflict"),
        "{}",
        stderr(&conflict)
    );
    c.kubectl_ok(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        "someone-else",
        "-n",
        "ssa",
        "-f",
        repo("examples/stack.yaml").to_str().unwrap(),
    ])
    .await;
    let object: Value = serde_json::from_str(
        &c.kubectl_ok(&["get", "hnet", "clinic-net", "-n", "ssa", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(
        object["spec"]["bastion"]["instanceType"], "t3.micro",
        "forced apply took the field"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_describe_explain_and_output_formats() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", repo("examples/stack.yaml").to_str().unwrap()])
        .await;

    let all = c.kubectl_ok(&["get", "hipaa"]).await;
    for name in [
        "hipaanetwork.hipaa.dev/clinic-net",
        "hipaabackend.hipaa.dev/clinic-backend",
        "hipaaedge.hipaa.dev/clinic-edge",
        "paymentpipeline.hipaa.dev/clinic-payments",
    ] {
        assert!(
            all.contains(name),
            "`kubectl get hipaa` lists {name}:\n{all}"
        );
    }
    let wide = c.kubectl_ok(&["get", "hnet", "-o", "wide"]).await;
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "READY",
            "SYNCED",
            "DRIFTED",
            "VPC",
            "COMPLIANT",
            "REGION",
            "CIDR",
            "AGE"
        ],
        "{wide}"
    );
    assert!(
        wide.contains("10.20.0.0/16") && wide.contains("us-east-1"),
        "{wide}"
    );
    let narrow = c.kubectl_ok(&["get", "hnet"]).await;
    assert!(
        !narrow.contains("CIDR"),
        "priority-1 columns only with -o wide:\n{narrow}"
    );

    let yaml = c
        .kubectl_ok(&["get", "hnet", "clinic-net", "-o", "yaml"])
        .await;
    assert!(
        yaml.contains("cidrBlock: 10.20.0.0/16") && yaml.contains("kind: HipaaNetwork"),
        "{yaml}"
    );
    let cidr = c
        .kubectl_ok(&[
            "get",
            "hnet",
            "clinic-net",
            "-o",
            "jsonpath={.spec.cidrBlock}",
        ])
        .await;
    assert_eq!(cidr, "10.20.0.0/16");

    let described = c.kubectl_ok(&["describe", "hnet", "clinic-net"]).await;
    assert!(
        described.contains("Name:")
            && described.contains("clinic-net")
            && described.contains("Cidr Block:"),
        "{described}"
    );

    let explained = c.kubectl_ok(&["explain", "hipaanetwork.spec"]).await;
    assert!(
        explained.contains("cidrBlock") && explained.contains("IPv4 CIDR of the VPC"),
        "{explained}"
    );
    let bastion = c
        .kubectl_ok(&["explain", "hipaanetwork.spec.bastion"])
        .await;
    assert!(bastion.contains("allowedCidrs"), "{bastion}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_ready_is_satisfied_by_a_status_write() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", repo("examples/stack.yaml").to_str().unwrap()])
        .await;
    let waiter = c
        .kubectl_command(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=20s",
            "hnet/clinic-net",
        ])
        .output();
    let writer = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let api: Api<HipaaNetwork> = Api::default_namespaced(c.client());
        let status = HipaaNetworkStatus {
            vpc_id: Some("vpc-0123456789abcdef0".into()),
            common: hipaa_operator::api::CommonStatus {
                observed_generation: Some(1),
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    reason: "Available".into(),
                    message: "all resources available".into(),
                    observed_generation: Some(1),
                    last_transition_time: Time(jiff::Timestamp::now()),
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        api.patch_status(
            "clinic-net",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .expect("status written");
    };
    let (out, ()) = tokio::join!(waiter, writer);
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("condition met"));
    let vpc = c
        .kubectl_ok(&[
            "get",
            "hnet",
            "clinic-net",
            "-o",
            "jsonpath={.status.vpcId}",
        ])
        .await;
    assert_eq!(vpc, "vpc-0123456789abcdef0");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_merge_and_json() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", repo("examples/stack.yaml").to_str().unwrap()])
        .await;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        "clinic-net",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"driftPolicy":"Report"}}"#,
    ])
    .await;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        "clinic-net",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/bastion/instanceType","value":"t3.nano"}]"#,
    ])
    .await;
    let object: Value = serde_json::from_str(
        &c.kubectl_ok(&["get", "hnet", "clinic-net", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(object["spec"]["driftPolicy"], "Report");
    assert_eq!(object["spec"]["bastion"]["instanceType"], "t3.nano");
    // A patch that breaks a rule is refused with the schema's message.
    let bad = c
        .kubectl(&[
            "patch",
            "hnet",
            "clinic-net",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"bastion":{"allowedCidrs":["0.0.0.0/0"]}}}"#,
        ])
        .await;
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("must not contain 0.0.0.0/0 or ::/0"),
        "{}",
        stderr(&bad)
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_waits_for_the_finalizer_another_client_removes() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", repo("examples/stack.yaml").to_str().unwrap()])
        .await;
    c.kubectl_ok(&[
        "patch",
        "hnet",
        "clinic-net",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":["hipaa.dev/cleanup"]}}"#,
    ])
    .await;
    let deleter = c
        .kubectl_command(&[
            "delete",
            "hnet",
            "clinic-net",
            "--wait=true",
            "--timeout=20s",
        ])
        .output();
    let api: Api<HipaaNetwork> = Api::default_namespaced(c.client());
    let remover = async {
        // The object stays, marked for deletion, until the finalizer goes.
        let mut marked = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if api
                .get("clinic-net")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
            {
                marked = true;
                break;
            }
        }
        assert!(marked, "delete set a deletionTimestamp");
        api.patch(
            "clinic-net",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    };
    let (out, ()) = tokio::join!(deleter, remover);
    let out = out.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("deleted"));
    assert!(api.get_opt("clinic-net").await.unwrap().is_none());
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_streams_changes() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let mut watcher = c
        .kubectl_command(&["get", "hnet", "--watch", "-o", "name"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(watcher.stdout.take().unwrap()).lines();
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.kubectl_ok(&["apply", "-f", repo("examples/stack.yaml").to_str().unwrap()])
        .await;
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("an event within 10 s")
        .unwrap();
    assert_eq!(line.as_deref(), Some("hipaanetwork.hipaa.dev/clinic-net"));
    watcher.kill().await.ok();
    c.stop().await;
}

/// `# Expect:` lines of an invalid example.
fn expectations(text: &str) -> Vec<String> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# Expect:").map(|e| e.trim().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_invalid_example_is_refused_by_kubectl_apply_with_the_schema_message() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let mut files: Vec<_> = std::fs::read_dir(repo("examples/invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 19);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let out = c.kubectl(&["apply", "-f", file.to_str().unwrap()]).await;
        assert!(!out.status.success(), "{} was accepted", file.display());
        let err = stderr(&out);
        for expected in expectations(&text) {
            assert!(
                err.contains(&expected),
                "{}: {expected:?} not in:\n{err}",
                file.display()
            );
        }
    }
    // Nothing half-created: only the first documents of the update examples exist.
    let names = c.kubectl_ok(&["get", "hipaa", "-o", "name"]).await;
    for line in names.lines() {
        assert!(
            [
                "moving-region",
                "changing-cidr",
                "switching-engine",
                "adding-sort-key"
            ]
            .iter()
            .any(|n| line.ends_with(n)),
            "an invalid object was stored: {line}"
        );
    }
    c.stop().await;
}

/// An object as `kubectl get -o json --show-managed-fields` prints it, with what differs
/// from run to run blanked out (uid, resourceVersion, creation and write times) and its
/// managers in name order.
async fn stored(c: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["get", "-o", "json", "--show-managed-fields"];
    all.extend_from_slice(args);
    let mut object: Value = serde_json::from_str(&c.kubectl_ok(&all).await).unwrap();
    let metadata = object["metadata"].as_object_mut().unwrap();
    for key in ["uid", "resourceVersion", "creationTimestamp"] {
        assert!(metadata.remove(key).is_some(), "{key} is set: {metadata:?}");
    }
    if let Some(Value::Array(managers)) = metadata.get_mut("managedFields") {
        for manager in managers.iter_mut() {
            assert!(manager["time"].is_string(), "{manager}");
            manager.as_object_mut().unwrap().remove("time");
        }
        managers.sort_by_key(|m| m["manager"].as_str().unwrap_or_default().to_string());
    }
    object
}

fn update(manager: &str, fields: Value) -> Value {
    json!({"manager": manager, "operation": "Update", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": fields})
}

/// kubectl's typed `create` commands send their objects as protobuf (issue #15: they got
/// 415), `label` and `annotate` send JSON merge patches; every object reads back as a real
/// API server stores it: defaulted (Secret type, the namespace's name label), bytes in
/// base64, and each field owned by the command that wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_create_commands_send_protobuf_and_objects_read_back_as_stored() {
    let c = Cluster::start().await;
    // -v=8 prints the request headers: the body really went as protobuf.
    let out = c.kubectl(&["create", "namespace", "clinic", "-v=8"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "namespace/clinic created\n");
    assert!(
        stderr(&out).contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl sent protobuf: {}",
        stderr(&out)
    );

    let out = c
        .kubectl_ok(&[
            "create",
            "secret",
            "generic",
            "db-password",
            "-n",
            "clinic",
            "--from-literal=password=S3cr3t!pw",
            "--from-literal=username=admin",
        ])
        .await;
    assert_eq!(out, "secret/db-password created\n");
    let password = c
        .kubectl_ok(&[
            "get",
            "secret",
            "db-password",
            "-n",
            "clinic",
            "-o",
            "jsonpath={.data.password}",
        ])
        .await;
    assert_eq!(password, "UzNjcjN0IXB3", "base64 of S3cr3t!pw");

    let settings = c.home.join("settings.txt");
    std::fs::write(&settings, "line one\nline two\n").unwrap();
    let blob = c.home.join("blob.bin");
    std::fs::write(&blob, b"\x00\x01\x02\xff\xfe binary").unwrap();
    let out = c
        .kubectl_ok(&[
            "create",
            "configmap",
            "app-config",
            "-n",
            "clinic",
            "--from-literal=mode=prod",
            &format!("--from-file={}", settings.display()),
            &format!("--from-file=blob.bin={}", blob.display()),
        ])
        .await;
    assert_eq!(out, "configmap/app-config created\n");
    let out = c
        .kubectl_ok(&["create", "serviceaccount", "builder", "-n", "clinic"])
        .await;
    assert_eq!(out, "serviceaccount/builder created\n");

    let out = c
        .kubectl_ok(&["label", "namespace", "clinic", "team=portal"])
        .await;
    assert_eq!(out, "namespace/clinic labeled\n");
    let out = c
        .kubectl_ok(&[
            "annotate",
            "secret",
            "db-password",
            "-n",
            "clinic",
            "owner=platform",
        ])
        .await;
    assert_eq!(out, "secret/db-password annotated\n");

    assert_eq!(
        stored(&c, &["namespace", "clinic"]).await,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "clinic",
                "labels": {"kubernetes.io/metadata.name": "clinic", "team": "portal"},
                "managedFields": [
                    update("kubectl-create", json!({"f:metadata": {"f:labels": {
                        ".": {}, "f:kubernetes.io/metadata.name": {}}}})),
                    update("kubectl-label", json!({"f:metadata": {"f:labels": {"f:team": {}}}})),
                ]
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"}
        })
    );
    assert_eq!(
        stored(&c, &["secret", "db-password", "-n", "clinic"]).await,
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "db-password",
                "namespace": "clinic",
                "annotations": {"owner": "platform"},
                "managedFields": [
                    update("kubectl-annotate", json!({"f:metadata": {"f:annotations": {
                        ".": {}, "f:owner": {}}}})),
                    update("kubectl-create", json!({"f:data": {
                        ".": {}, "f:password": {}, "f:username": {}}, "f:type": {}})),
                ]
            },
            "data": {"password": "UzNjcjN0IXB3", "username": "YWRtaW4="},
            "type": "Opaque"
        })
    );
    assert_eq!(
        stored(&c, &["configmap", "app-config", "-n", "clinic"]).await,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "app-config",
                "namespace": "clinic",
                "managedFields": [update("kubectl-create", json!({
                    "f:binaryData": {".": {}, "f:blob.bin": {}},
                    "f:data": {".": {}, "f:mode": {}, "f:settings.txt": {}}}))]
            },
            "data": {"mode": "prod", "settings.txt": "line one\nline two\n"},
            "binaryData": {"blob.bin": "AAEC//4gYmluYXJ5"}
        })
    );
    assert_eq!(
        stored(&c, &["serviceaccount", "builder", "-n", "clinic"]).await,
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "builder", "namespace": "clinic"}
        })
    );
    // The same create again is refused as the real server refuses it (kubectl's words
    // around the server's AlreadyExists message).
    let again = c
        .kubectl(&["create", "serviceaccount", "builder", "-n", "clinic"])
        .await;
    assert!(!again.status.success());
    assert_eq!(
        stderr(&again),
        "error: failed to create serviceaccount: serviceaccounts \"builder\" already exists\n"
    );
    c.stop().await;
}
