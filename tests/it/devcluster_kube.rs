//! kube-rs against the devcluster: watches, reflectors, optimistic concurrency and
//! persistence, as the operator's controllers will rely on them.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Cluster;
use futures::{StreamExt, TryStreamExt};
use hipaa_operator::devcluster::{DevCluster, Options};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};

fn config_map(name: &str, n: usize) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("n".to_string(), n.to_string())])),
        ..Default::default()
    }
}

fn n_of(cm: &ConfigMap) -> usize {
    cm.data
        .as_ref()
        .and_then(|d| d.get("n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_every_change_in_order_across_server_side_timeouts() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    api.create(&PostParams::default(), &config_map("counter", 0))
        .await
        .unwrap();
    // A 1-second server-side timeout: the watch is re-established many times meanwhile.
    let config = watcher::Config::default().timeout(1);
    let mut seen = Vec::new();
    let stream = watcher(api.clone(), config).applied_objects();
    futures::pin_mut!(stream);
    // The initial list shows n=0; only then do the changes start.
    let first = stream.try_next().await.unwrap().unwrap();
    seen.push(n_of(&first));
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for n in 1..=150 {
                let mut cm = api.get("counter").await.unwrap();
                cm.data = Some(BTreeMap::from([("n".to_string(), n.to_string())]));
                api.replace("counter", &PostParams::default(), &cm)
                    .await
                    .unwrap();
                if n % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            }
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.last() != Some(&150) {
        let next = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .expect("watch keeps up")
            .unwrap()
            .unwrap();
        seen.push(n_of(&next));
    }
    writer.await.unwrap();
    assert_eq!(
        seen,
        (0..=150).collect::<Vec<_>>(),
        "every change exactly once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_resource_version_is_gone_and_the_watcher_relists() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let first = api
        .create(&PostParams::default(), &config_map("a", 0))
        .await
        .unwrap();
    for n in 1..=5 {
        api.replace(
            "a",
            &PostParams::default(),
            &ConfigMap {
                metadata: api.get("a").await.unwrap().metadata,
                ..config_map("a", n)
            },
        )
        .await
        .unwrap();
    }
    c.cluster.compact();
    // Raw watch from before the compaction: an ERROR event with 410, as the real server sends.
    let rv = first.metadata.resource_version.unwrap();
    let mut events = api
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap()
        .boxed();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410, "{e:?}"),
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    // kube-rs's watcher recovers by listing again and converges on the current state.
    let (reader, writer) = reflector::store::<ConfigMap>();
    let reflect = tokio::spawn(
        reflector(
            writer,
            watcher(api.clone(), watcher::Config::default()).default_backoff(),
        )
        .applied_objects()
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("watcher error: {e}");
            }
        }),
    );
    tokio::time::timeout(Duration::from_secs(30), reader.wait_until_ready())
        .await
        .expect("the watcher re-listed within 30 s")
        .unwrap();
    assert_eq!(
        n_of(
            &reader
                .get(&reflector::ObjectRef::new("a").within("default"))
                .unwrap()
        ),
        5
    );
    reflect.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_equals_a_list_after_10000_writes_from_concurrent_clients() {
    let c = Cluster::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(c.client());
    let (reader, writer) = reflector::store::<ConfigMap>();
    let reflect = tokio::spawn(
        reflector(writer, watcher(api.clone(), watcher::Config::default()))
            .applied_objects()
            .for_each(|_| async {}),
    );
    reader.wait_until_ready().await.unwrap();
    const CLIENTS: usize = 4;
    const WRITES: usize = 10_000;
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        // Separate clients (connections), as separate controllers would have.
        let api: Api<ConfigMap> = Api::default_namespaced(common::client_of(&c).await);
        tasks.push(tokio::spawn(async move {
            for i in 0..WRITES / CLIENTS {
                let name = format!("cm-{client}-{}", i % 250);
                let cm = config_map(&name, i);
                if i < 250 {
                    api.create(&PostParams::default(), &cm).await.unwrap();
                } else if i % 50 == 7 {
                    api.delete(&name, &Default::default()).await.unwrap();
                    api.create(&PostParams::default(), &cm).await.unwrap();
                } else {
                    let mut current = api.get(&name).await.unwrap();
                    current.data = cm.data;
                    api.replace(&name, &PostParams::default(), &current)
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let listed: BTreeMap<String, String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|cm| {
            (
                cm.metadata.name.clone().unwrap(),
                cm.metadata.resource_version.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed.len(), CLIENTS * 250);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cached: BTreeMap<String, String> = reader
            .state()
            .iter()
            .map(|cm| {
                (
                    cm.metadata.name.clone().unwrap(),
                    cm.metadata.resource_version.clone().unwrap(),
                )
            })
            .collect();
        if cached == listed {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reflector never caught up: {} cached vs {} listed",
            cached.len(),
            listed.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reflect.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_racing_on_one_object_get_exactly_one_conflict_per_race() {
    let c = Cluster::start().await;
    let a: Api<ConfigMap> = Api::default_namespaced(c.client());
    let b: Api<ConfigMap> = Api::default_namespaced(common::client_of(&c).await);
    a.create(&PostParams::default(), &config_map("contended", 0))
        .await
        .unwrap();
    let mut conflicts = 0;
    const RACES: usize = 50;
    for race in 0..RACES {
        let mut from_a = a.get("contended").await.unwrap();
        let mut from_b = b.get("contended").await.unwrap();
        from_a.data = Some(BTreeMap::from([("n".into(), format!("a{race}"))]));
        from_b.data = Some(BTreeMap::from([("n".into(), format!("b{race}"))]));
        let params = PostParams::default();
        let (ra, rb) = tokio::join!(
            a.replace("contended", &params, &from_a),
            b.replace("contended", &params, &from_b)
        );
        for result in [ra, rb] {
            match result {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => conflicts += 1,
                Err(e) => panic!("unexpected error {e}"),
            }
        }
    }
    assert_eq!(conflicts, RACES, "exactly one loser per race");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_resource_versions_survive_kill_9_with_a_data_dir() {
    let dir =
        std::env::temp_dir().join(format!("devcluster-data-{}", uuid::Uuid::new_v4().simple()));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let start = || {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
            .args([
                "devcluster",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
                dir.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let kubeconfig = dir.join("devcluster.kubeconfig");
    let connect = || async {
        for _ in 0..100 {
            if let Ok(client) = hipaa_operator::devcluster::client_for(&kubeconfig).await {
                let api: Api<ConfigMap> = Api::default_namespaced(client);
                if api.list(&ListParams::default()).await.is_ok() {
                    return api;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("devcluster did not come up");
    };
    let mut child = start();
    let api = connect().await;
    let mut versions = BTreeMap::new();
    for i in 0..100 {
        let cm = api
            .create(&PostParams::default(), &config_map(&format!("keep-{i}"), i))
            .await
            .unwrap();
        versions.insert(
            cm.metadata.name.unwrap(),
            cm.metadata.resource_version.unwrap(),
        );
    }
    let last: u64 = versions
        .values()
        .map(|v| v.parse::<u64>().unwrap())
        .max()
        .unwrap();
    child.kill().await.unwrap(); // SIGKILL
    let _child = start();
    let api = connect().await;
    let listed: BTreeMap<String, String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|cm| {
            (
                cm.metadata.name.unwrap(),
                cm.metadata.resource_version.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed, versions,
        "every acknowledged write survived, resourceVersions included"
    );
    let next = api
        .create(&PostParams::default(), &config_map("after", 0))
        .await
        .unwrap();
    assert!(
        next.metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > last,
        "the sequence continues"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_right_token_are_unauthorized() {
    let cluster = DevCluster::start(Options::default()).await.unwrap();
    let text = std::fs::read_to_string(cluster.kubeconfig_path()).unwrap();
    assert!(
        cluster.url().starts_with("https://127.0.0.1:"),
        "loopback by default, over TLS"
    );
    for (label, replacement) in [
        ("no token", "{}"),
        ("a wrong token", "{token: not-the-token}"),
    ] {
        let mut config: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
        config["users"][0]["user"] = serde_yaml_ng::from_str(replacement).unwrap();
        let path = cluster
            .kubeconfig_path()
            .with_extension(format!("{}.yaml", label.replace(' ', "-")));
        std::fs::write(&path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
        let api: Api<ConfigMap> =
            Api::default_namespaced(hipaa_operator::devcluster::client_for(&path).await.unwrap());
        match api.list(&ListParams::default()).await {
            Err(kube::Error::Api(e)) => assert_eq!(
                (e.code, e.reason.as_str()),
                (401, "Unauthorized"),
                "{label}"
            ),
            other => panic!("{label}: expected 401, got {other:?}"),
        }
    }
    cluster.shutdown().await;
}
