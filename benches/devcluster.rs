//! Devcluster throughput and memory with 10,000 objects: requests per second for create,
//! get, list, update and watch fan-out, and the server's resident memory. The server runs
//! as its own process (`hipaa-operator devcluster`), so its RSS is its own.
//!
//! Run: `cargo bench --bench devcluster` (figures are printed; BENCHMARKS.md records them).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, ObjectMeta, PostParams, WatchEvent, WatchParams};

const OBJECTS: usize = 10_000;
const CONCURRENCY: usize = 16;
const GETS: usize = 10_000;
const UPDATES: usize = 5_000;
const LISTS: usize = 10;
const WATCHERS: usize = 50;
const WATCHED_UPDATES: usize = 1_000;

fn config_map(i: usize) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("cm-{i:05}")),
            labels: Some(BTreeMap::from([(
                "bench".to_string(),
                "devcluster".to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "payload".to_string(),
            format!("value-{i}-{}", "x".repeat(200)),
        )])),
        ..Default::default()
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn report(what: &str, count: usize, elapsed: Duration) {
    println!(
        "{what:<34} {count:>7} in {:>7.2} s = {:>9.0} /s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = std::env::temp_dir().join(format!("devcluster-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
        .args([
            "devcluster",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = server.id().unwrap();
    let api: Api<ConfigMap> = loop {
        if let Ok(client) = hipaa_operator::devcluster::client_for(&kubeconfig).await {
            let api = Api::default_namespaced(client);
            if api.list(&ListParams::default().limit(1)).await.is_ok() {
                break api;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "devcluster bench: {OBJECTS} ConfigMaps of ~250 bytes, {CONCURRENCY} requests in flight, server pid {pid}"
    );
    println!("server RSS at start: {} MiB", rss_kib(pid) / 1024);

    let started = Instant::now();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &config_map(i)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    report("create", OBJECTS, started.elapsed());
    println!(
        "server RSS at {OBJECTS} objects: {} MiB",
        rss_kib(pid) / 1024
    );

    let started = Instant::now();
    futures::stream::iter(0..GETS)
        .map(|i| {
            let api = api.clone();
            async move { api.get(&format!("cm-{:05}", i % OBJECTS)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    report("get", GETS, started.elapsed());

    let started = Instant::now();
    for _ in 0..LISTS {
        let list = api.list(&ListParams::default()).await.unwrap();
        assert_eq!(list.items.len(), OBJECTS);
    }
    let elapsed = started.elapsed();
    report("list (all 10,000 objects)", LISTS, elapsed);
    println!(
        "{:<34} {:>7} objects/s",
        "  list throughput",
        (LISTS * OBJECTS) as f64 as u64 / elapsed.as_secs().max(1)
    );

    let started = Instant::now();
    futures::stream::iter(0..UPDATES)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("cm-{:05}", i % OBJECTS);
                let mut cm = api.get(&name).await?;
                cm.data = Some(BTreeMap::from([(
                    "payload".to_string(),
                    format!("updated-{i}"),
                )]));
                api.replace(&name, &PostParams::default(), &cm).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    report("update (get + replace)", UPDATES, started.elapsed());
    println!("server RSS after updates: {} MiB", rss_kib(pid) / 1024);

    // Watch fan-out: every watcher sees every update.
    let rv = api
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let api = api.clone();
        let rv = rv.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = api
                .watch(&WatchParams::default().timeout(120), &rv)
                .await
                .unwrap()
                .boxed();
            let mut seen = 0;
            while seen < WATCHED_UPDATES {
                match stream.try_next().await.unwrap() {
                    Some(WatchEvent::Modified(_)) => seen += 1,
                    Some(_) => {}
                    None => break,
                }
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    futures::stream::iter(0..WATCHED_UPDATES)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("cm-{:05}", i);
                let mut cm = api.get(&name).await?;
                cm.data = Some(BTreeMap::from([(
                    "payload".to_string(),
                    format!("watched-{i}"),
                )]));
                api.replace(&name, &PostParams::default(), &cm).await
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let mut delivered = 0;
    for w in watchers {
        delivered += w.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(
        delivered,
        WATCHERS * WATCHED_UPDATES,
        "every watcher saw every update"
    );
    report(
        &format!("watch fan-out ({WATCHERS} watchers) events"),
        delivered,
        elapsed,
    );
    println!(
        "server RSS with {WATCHERS} watches: {} MiB",
        rss_kib(pid) / 1024
    );
    server.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}
