//! The devcluster's API semantics through kube-rs and raw HTTP requests: selectors and
//! paging, generateName and dryRun, patches, deletion (preconditions, propagation,
//! garbage collection), status subresource and generation, CRD lifecycle, field
//! validation, and bad input answered with the real server's codes and nothing stored.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, repo};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams, Preconditions,
    PropagationPolicy,
};
use serde_json::{Value, json};

/// A request straight to the server (kube-rs adds only the token): status, headers, body.
async fn raw(
    c: &Cluster,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, axum::http::HeaderMap, Value) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .body(kube::client::Body::from(body))
        .unwrap();
    let response = c.client().send(request).await.expect("server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

async fn names(api: &Api<ConfigMap>, params: &ListParams) -> Vec<String> {
    api.list(params)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_and_field_selectors_and_paging() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    for (name, labels) in [
        ("a", vec![("tier", "web"), ("env", "prod")]),
        ("b", vec![("tier", "db"), ("env", "prod")]),
        ("c", vec![("tier", "web")]),
        ("d", vec![]),
    ] {
        api.create(&PostParams::default(), &cm(name, &labels))
            .await
            .unwrap();
    }
    let cases = [
        ("tier=web", vec!["a", "c"], "equality"),
        ("tier==web", vec!["a", "c"], "double-equals"),
        (
            "tier!=web",
            vec!["b", "d"],
            "inequality includes objects without the label",
        ),
        ("tier in (web,db)", vec!["a", "b", "c"], "set membership"),
        ("tier notin (web)", vec!["b", "d"], "set exclusion"),
        ("env", vec!["a", "b"], "exists"),
        ("!env", vec!["c", "d"], "does not exist"),
        ("tier=web,env=prod", vec!["a"], "requirements are ANDed"),
    ];
    for (selector, expected, why) in cases {
        assert_eq!(
            names(&api, &ListParams::default().labels(selector)).await,
            expected,
            "{selector}: {why}"
        );
    }
    assert_eq!(
        names(&api, &ListParams::default().fields("metadata.name=b")).await,
        ["b"]
    );
    assert_eq!(
        names(&api, &ListParams::default().fields("metadata.name!=b")).await,
        ["a", "c", "d"]
    );
    let all: Api<ConfigMap> = Api::all(c.client());
    assert_eq!(
        names(
            &all,
            &ListParams::default().fields("metadata.namespace=default")
        )
        .await
        .len(),
        4
    );
    assert!(
        names(
            &all,
            &ListParams::default().fields("metadata.namespace=kube-system")
        )
        .await
        .is_empty()
    );
    let (status, _, body) = raw(
        &c,
        "GET",
        "/api/v1/namespaces/default/configmaps?labelSelector=tier%20in%20(",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(status, 400, "a malformed selector is a bad request: {body}");

    for i in 0..21 {
        api.create(
            &PostParams::default(),
            &cm(&format!("page-{i:02}"), &[("paged", "yes")]),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().labels("paged").limit(10);
    let mut pages = 0;
    loop {
        let list = api.list(&params).await.unwrap();
        pages += 1;
        seen.extend(list.items.into_iter().map(|o| o.metadata.name.unwrap()));
        match list.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(pages, 3, "21 objects in pages of 10");
    assert_eq!(
        seen,
        (0..21).map(|i| format!("page-{i:02}")).collect::<Vec<_>>(),
        "each exactly once, in order"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_name_dry_run_and_strategic_merge() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let generated = ConfigMap {
        metadata: ObjectMeta {
            generate_name: Some("gen-".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let created = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = created.metadata.name.unwrap();
    assert!(
        name.starts_with("gen-") && name.len() == 9,
        "prefix plus 5 random characters: {name}"
    );
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());

    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would = api.create(&dry, &cm("dry", &[])).await.unwrap();
    assert_eq!(would.metadata.name.as_deref(), Some("dry"));
    assert!(
        api.get_opt("dry").await.unwrap().is_none(),
        "dryRun stores nothing"
    );

    api.create(&PostParams::default(), &cm("smp", &[]))
        .await
        .unwrap();
    let patched = api
        .patch(
            "smp",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"data": {"added": "yes"}, "metadata": {"finalizers": ["a/b"]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 2, "maps merge");
    assert_eq!(patched.metadata.finalizers.unwrap(), ["a/b"]);

    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", repo("examples/stack.yaml").to_str().unwrap()])
        .await;
    let (status, _, body) = raw(
        &c,
        "PATCH",
        "/apis/hipaa.dev/v1alpha1/namespaces/default/hipaanetworks/clinic-net",
        "application/strategic-merge-patch+json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        status, 415,
        "custom resources do not take strategic merge patches: {body}"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_preconditions_propagation_and_garbage_collection() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let owner = api
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .unwrap();
    let owner_ref = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}]);
    for name in ["dep-1", "dep-2"] {
        let mut dependent = cm(name, &[]);
        dependent.metadata.owner_references = serde_json::from_value(owner_ref.clone()).unwrap();
        api.create(&PostParams::default(), &dependent)
            .await
            .unwrap();
    }

    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete("owner", &wrong_uid).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 409, "{e:?}"),
        other => panic!("a failed precondition is a conflict, got {other:?}"),
    }

    // Background (default): the owner goes at once, the garbage collector takes the dependents.
    api.delete("owner", &DeleteParams::default()).await.unwrap();
    wait_until(|| async {
        api.get_opt("dep-1").await.unwrap().is_none()
            && api.get_opt("dep-2").await.unwrap().is_none()
    })
    .await;

    // Orphan: dependents stay, without the owner reference.
    let owner = api
        .create(&PostParams::default(), &cm("owner2", &[]))
        .await
        .unwrap();
    let mut dependent = cm("orphan", &[]);
    dependent.metadata.owner_references = serde_json::from_value(json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner.metadata.uid.unwrap()}])).unwrap();
    api.create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    api.delete(
        "owner2",
        &DeleteParams {
            propagation_policy: Some(PropagationPolicy::Orphan),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    wait_until(|| async { api.get_opt("owner2").await.unwrap().is_none() }).await;
    let orphan = api.get("orphan").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty(),
        "orphaned, not deleted"
    );

    // Foreground: the owner waits, marked for deletion, until its dependents are gone.
    let owner = api
        .create(&PostParams::default(), &cm("owner3", &[]))
        .await
        .unwrap();
    let mut dependent = cm("held", &[]);
    dependent.metadata.finalizers = Some(vec!["test/hold".into()]);
    dependent.metadata.owner_references = serde_json::from_value(json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner3", "uid": owner.metadata.uid.unwrap()}])).unwrap();
    api.create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    api.delete("owner3", &DeleteParams::foreground())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let waiting = api.get("owner3").await.unwrap();
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert!(
        waiting
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    wait_until(|| async { api.get_opt("owner3").await.unwrap().is_none() }).await;

    // deletecollection with a selector deletes exactly the matching objects.
    for (name, labels) in [
        ("x1", vec![("batch", "1")]),
        ("x2", vec![("batch", "1")]),
        ("x3", vec![("batch", "2")]),
    ] {
        api.create(&PostParams::default(), &cm(name, &labels))
            .await
            .unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=1"),
    )
    .await
    .unwrap();
    assert_eq!(
        names(&api, &ListParams::default().labels("batch")).await,
        ["x3"]
    );
    c.stop().await;
}

async fn wait_until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not reached within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_and_generation() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.kubectl_ok(&["apply", "-f", repo("examples/stack.yaml").to_str().unwrap()])
        .await;
    let api: Api<hipaa_operator::api::HipaaNetwork> = Api::default_namespaced(c.client());
    let start = api.get("clinic-net").await.unwrap();
    assert_eq!(start.metadata.generation, Some(1));

    // A write to the object ignores status; a write to /status ignores everything else.
    let object = api
        .patch(
            "clinic-net",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"vpcId": "vpc-ignored"}, "metadata": {"labels": {"a": "b"}}}),
            ),
        )
        .await
        .unwrap();
    assert!(
        object.status.is_none(),
        "status is not writable through the object"
    );
    assert_eq!(
        object.metadata.generation,
        Some(1),
        "a label change is not a spec change"
    );
    let object = api
        .patch_status(
            "clinic-net",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"vpcId": "vpc-1"}, "spec": {"cidrBlock": "10.99.0.0/16"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(object.status.unwrap().vpc_id.as_deref(), Some("vpc-1"));
    assert_eq!(
        object.spec.cidr_block, "10.20.0.0/16",
        "spec is not writable through /status"
    );
    assert_eq!(
        object.metadata.generation,
        Some(1),
        "status writes do not bump the generation"
    );
    let object = api
        .patch(
            "clinic-net",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"driftPolicy": "Report"}})),
        )
        .await
        .unwrap();
    assert_eq!(object.metadata.generation, Some(2), "a spec change does");
    let rv = |o: &hipaa_operator::api::HipaaNetwork| {
        o.metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(rv(&object) > rv(&start));
    // The same patch again changes nothing, so the resourceVersion stays.
    let again = api
        .patch(
            "clinic-net",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"driftPolicy": "Report"}})),
        )
        .await
        .unwrap();
    assert_eq!(rv(&again), rv(&object), "a no-op write is not a write");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_lifecycle_serves_and_removes_its_kind() {
    let c = Cluster::start().await;
    let started = std::time::Instant::now();
    c.kubectl_ok(&["apply", "-f", repo("crds").to_str().unwrap()])
        .await;
    let (status, _, list) = raw(
        &c,
        "GET",
        "/apis/hipaa.dev/v1alpha1/namespaces/default/hipaanetworks",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(status, 200, "served as soon as the CRD is created: {list}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let crd: Value = serde_json::from_str(
        &c.kubectl_ok(&["get", "crd", "hipaanetworks.hipaa.dev", "-o", "json"])
            .await,
    )
    .unwrap();
    let conditions: Vec<(&str, &str)> = crd["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert!(
        conditions.contains(&("Established", "True"))
            && conditions.contains(&("NamesAccepted", "True")),
        "{conditions:?}"
    );

    c.kubectl_ok(&["apply", "-f", repo("examples/stack.yaml").to_str().unwrap()])
        .await;
    c.kubectl_ok(&[
        "delete",
        "crd",
        "hipaanetworks.hipaa.dev",
        "--wait=true",
        "--timeout=20s",
    ])
    .await;
    let (status, _, _) = raw(
        &c,
        "GET",
        "/apis/hipaa.dev/v1alpha1/namespaces/default/hipaanetworks",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(status, 404, "the kind is no longer served");
    let (_, _, resources) = raw(
        &c,
        "GET",
        "/apis/hipaa.dev/v1alpha1",
        "application/json",
        vec![],
    )
    .await;
    assert!(
        !resources.to_string().contains("hipaanetworks"),
        "nor discovered: {resources}"
    );
    // Re-creating the CRD shows none of the old objects.
    c.install_crds().await;
    let (_, _, list) = raw(
        &c,
        "GET",
        "/apis/hipaa.dev/v1alpha1/hipaanetworks",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(list["items"], json!([]), "its objects went with it");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_validation_strict_warn_and_ignore() {
    let c = Cluster::start().await;
    c.install_crds().await;
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(
        &std::fs::read_to_string(repo("examples/stack.yaml")).unwrap(),
    )
    .map(|d| serde::Deserialize::deserialize(d).unwrap())
    .collect();
    let mut network = docs[0].clone();
    network["spec"]["natGateway"] = json!("Single"); // a typo of natGateways
    let path = "/apis/hipaa.dev/v1alpha1/namespaces/default/hipaanetworks";
    let body = |name: &str| {
        let mut n = network.clone();
        n["metadata"]["name"] = json!(name);
        serde_json::to_vec(&n).unwrap()
    };
    let (status, _, strict) = raw(
        &c,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        "application/json",
        body("strict"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        strict["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.natGateway\""),
        "{strict}"
    );
    let (status, headers, warned) = raw(
        &c,
        "POST",
        &format!("{path}?fieldValidation=Warn"),
        "application/json",
        body("warn"),
    )
    .await;
    assert_eq!(status, 201);
    let warning = headers
        .get("warning")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        warning.contains("unknown field \\\"spec.natGateway\\\"")
            || warning.contains("spec.natGateway"),
        "{warning}"
    );
    assert!(warned["spec"].get("natGateway").is_none(), "pruned");
    let (status, headers, ignored) = raw(
        &c,
        "POST",
        &format!("{path}?fieldValidation=Ignore"),
        "application/json",
        body("ignore"),
    )
    .await;
    assert_eq!(status, 201);
    assert!(headers.get("warning").is_none());
    assert!(ignored["spec"].get("natGateway").is_none(), "pruned");
    c.stop().await;
}

/// Method, path, content type, body, expected code, reason, what it proves.
type BadRequest = (
    &'static str,
    String,
    &'static str,
    Vec<u8>,
    u16,
    &'static str,
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_real_status_and_stores_nothing() {
    let c = Cluster::start().await;
    let path = "/api/v1/namespaces/default/configmaps";
    let huge = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "huge"}, "data": {"x": "y".repeat(3 * 1024 * 1024)}})).unwrap();
    let cases: Vec<BadRequest> = vec![
        (
            "POST",
            path.into(),
            "application/json",
            b"{not json".to_vec(),
            400,
            "BadRequest",
            "malformed JSON",
        ),
        (
            "POST",
            path.into(),
            "application/yaml",
            b"metadata: [unclosed".to_vec(),
            400,
            "BadRequest",
            "malformed YAML",
        ),
        (
            "PATCH",
            format!("{path}/x"),
            "application/apply-patch+yaml",
            b"a: [b".to_vec(),
            400,
            "BadRequest",
            "malformed apply YAML",
        ),
        (
            "POST",
            "/apis/hipaa.dev/v1alpha1/namespaces/default/hipaadatabases".into(),
            "application/json",
            b"{}".to_vec(),
            404,
            "NotFound",
            "unknown kind",
        ),
        (
            "POST",
            "/apis/apps/v9/namespaces/default/deployments".into(),
            "application/json",
            b"{}".to_vec(),
            404,
            "NotFound",
            "unknown version",
        ),
        (
            "POST",
            path.into(),
            "application/json",
            huge,
            413,
            "RequestEntityTooLarge",
            "body over 3 MiB",
        ),
        (
            "POST",
            path.into(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_A_Name"}}"#.to_vec(),
            422,
            "Invalid",
            "name not a DNS subdomain",
        ),
        (
            "POST",
            "/api/v1/namespaces/nowhere/configmaps".into(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(),
            404,
            "NotFound",
            "namespace does not exist",
        ),
        (
            "POST",
            path.into(),
            "application/vnd.kubernetes.protobuf",
            b"k8s\x00".to_vec(),
            400,
            "BadRequest",
            "protobuf envelope without a message",
        ),
        (
            "POST",
            path.into(),
            "application/cbor",
            vec![0xa0],
            415,
            "UnsupportedMediaType",
            "CBOR (off on the real server by default)",
        ),
    ];
    for (method, url, content_type, body, code, reason, why) in cases {
        let (status, _, status_body) = raw(&c, method, &url, content_type, body).await;
        assert_eq!(status, code, "{why}: {status_body}");
        assert_eq!(status_body["kind"], "Status", "{why}");
        assert_eq!(status_body["reason"], reason, "{why}: {status_body}");
        assert_eq!(status_body["code"], code, "{why}");
    }
    let (_, _, list) = raw(&c, "GET", "/api/v1/configmaps", "application/json", vec![]).await;
    assert_eq!(list["items"], json!([]), "nothing was stored");
    let (_, _, invalid) = raw(
        &c,
        "POST",
        path,
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_A_Name"}}"#.to_vec(),
    )
    .await;
    assert_eq!(
        invalid["details"]["causes"][0]["field"], "metadata.name",
        "{invalid}"
    );
    assert!(invalid["message"].as_str().unwrap().starts_with("ConfigMap \"Not_A_Name\" is invalid: metadata.name: Invalid value: \"Not_A_Name\": a lowercase RFC 1123 subdomain"), "{invalid}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_empties_it_first_and_events_share_one_store() {
    let c = Cluster::start().await;
    c.create_namespace("doomed").await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "doomed");
    api.create(&PostParams::default(), &cm("inside", &[]))
        .await
        .unwrap();

    // An events.k8s.io/v1 Event (what kube-rs's recorder writes) is a core/v1 Event too.
    let (status, _, _) = raw(&c, "POST", "/apis/events.k8s.io/v1/namespaces/doomed/events", "application/json", serde_json::to_vec(&json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "hipaa.dev/operator", "reportingInstance": "op-0",
        "action": "Reconcile", "reason": "DriftDetected", "type": "Warning", "note": "bastion SG opened to 0.0.0.0/0",
        "regarding": {"kind": "ConfigMap", "name": "inside", "namespace": "doomed"}
    })).unwrap()).await;
    assert_eq!(status, 201);
    let (_, _, core) = raw(
        &c,
        "GET",
        "/api/v1/namespaces/doomed/events?fieldSelector=involvedObject.name%3Dinside",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(
        core["items"][0]["message"], "bastion SG opened to 0.0.0.0/0",
        "{core}"
    );
    assert_eq!(core["items"][0]["involvedObject"]["kind"], "ConfigMap");

    c.kubectl_ok(&[
        "delete",
        "namespace",
        "doomed",
        "--wait=true",
        "--timeout=20s",
    ])
    .await;
    let (status, _, _) = raw(
        &c,
        "GET",
        "/api/v1/namespaces/doomed",
        "application/json",
        vec![],
    )
    .await;
    assert_eq!(status, 404);
    let (_, _, left) = raw(&c, "GET", "/api/v1/configmaps", "application/json", vec![]).await;
    assert_eq!(left["items"], json!([]), "its contents went first");
    let (status, _, _) = raw(
        &c,
        "POST",
        "/api/v1/namespaces/doomed/configmaps",
        "application/json",
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"late"}}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 404, "no writes into a deleted namespace");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_honours_timeout_seconds_and_sends_bookmarks() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    api.create(&PostParams::default(), &cm("w", &[]))
        .await
        .unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let started = std::time::Instant::now();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&timeoutSeconds=3&resourceVersion={rv}"
    );
    let request = axum::http::Request::builder()
        .uri(path)
        .body(kube::client::Body::empty())
        .unwrap();
    let response = c.client().send(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(6),
        "the server ends the watch after timeoutSeconds: {elapsed:?}"
    );
    let events: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert!(
        !events.is_empty(),
        "an idle watch with bookmarks allowed gets them"
    );
    for event in &events {
        assert_eq!(
            event["type"], "BOOKMARK",
            "nothing changed after {rv}: {event}"
        );
        assert!(
            event["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= rv.parse::<u64>().unwrap()
        );
    }
    c.stop().await;
}

fn protobuf_fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo(&format!(
        "crates/devcluster/tests/fixtures/protobuf/{name}"
    )))
    .unwrap()
}

/// Protobuf bodies (kubectl's own, captured) create and replace built-in objects exactly as
/// their JSON does; custom resources and other media types get the real server's answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_bodies_write_built_ins_as_json_does_and_other_media_types_are_refused() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace("clinic").await;
    let path = "/api/v1/namespaces/clinic/configmaps";
    let body = protobuf_fixture("configmap.kubectl.pb");
    let (status, _, created) = raw(
        &c,
        "POST",
        path,
        "application/vnd.kubernetes.protobuf",
        body.clone(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["settings.txt"], "line one\nline two\n");
    assert_eq!(created["binaryData"]["blob.bin"], "AAEC//4gYmluYXJ5");
    // The same object sent as kubectl's JSON, under another name, is stored the same.
    let mut as_json: Value =
        serde_json::from_slice(&protobuf_fixture("configmap.kubectl.json")).unwrap();
    as_json["metadata"]["name"] = json!("app-config-json");
    let (status, _, from_json) = raw(
        &c,
        "POST",
        path,
        "application/json",
        serde_json::to_vec(&as_json).unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{from_json}");
    let without_identity = |mut object: Value| {
        for key in ["name", "uid", "resourceVersion", "creationTimestamp"] {
            object["metadata"].as_object_mut().unwrap().remove(key);
        }
        object["metadata"]["managedFields"][0]
            .as_object_mut()
            .unwrap()
            .remove("time");
        object
    };
    assert_eq!(without_identity(created), without_identity(from_json));
    // A replace (PUT) with a protobuf body: the stale-free object is accepted as is.
    let (status, _, replaced) = raw(
        &c,
        "PUT",
        &format!("{path}/app-config"),
        "application/vnd.kubernetes.protobuf",
        body,
    )
    .await;
    assert_eq!(status, 200, "{replaced}");

    // A custom resource has no protobuf form: the real server negotiates the media type,
    // then cannot decode the body (400, not 415).
    let (status, _, refused) = raw(
        &c,
        "POST",
        "/apis/hipaa.dev/v1alpha1/namespaces/clinic/hipaanetworks",
        "application/vnd.kubernetes.protobuf",
        protobuf_fixture("configmap.kubectl.pb"),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["message"],
        "ConfigMap in version \"v1\" cannot be handled as a HipaaNetwork: Object 'Kind' is missing in 'object has no kind field '"
    );
    // Any other media type: the real server's 415, naming what it takes, no details.
    for content_type in ["application/cbor", "text/plain", "application/x-yaml"] {
        let (status, _, refused) = raw(&c, "POST", path, content_type, b"{}".to_vec()).await;
        assert_eq!(status, 415, "{content_type}: {refused}");
        assert_eq!(
            refused,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
                "reason": "UnsupportedMediaType", "code": 415}),
            "{content_type}"
        );
    }
    // Media type parameters do not matter.
    let (status, _, _) = raw(
        &c,
        "POST",
        path,
        "application/json; charset=utf-8",
        serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "charset"}}),
        )
        .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    // A patch in a media type patches do not come in: the patch types, in the real order.
    let (status, _, refused) = raw(
        &c,
        "PATCH",
        &format!("{path}/app-config"),
        "application/vnd.kubernetes.protobuf",
        protobuf_fixture("configmap.kubectl.pb"),
    )
    .await;
    assert_eq!(status, 415, "{refused}");
    assert_eq!(
        refused["message"],
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
    );
    c.stop().await;
}
