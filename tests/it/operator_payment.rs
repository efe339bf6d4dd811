//! The PaymentPipeline in the operator, on the simulated AWS (its pending states and
//! latencies): it waits for its network without an AWS call, starts the moment the
//! network is Ready, converges with every HIPAA row passing, finds and remediates drift,
//! and leaves nothing behind when deleted.

use std::time::{Duration, Instant};

use hipaa_operator::api::{ControlResult, HipaaNetwork, PaymentPipeline};
use hipaa_operator::cloud::sim::{SimCloud, SimConfig};
use hipaa_operator::cloud::{DynamoDbTableSpec, Kind, Owner, Provider, Spec, TAG_OWNER};
use hipaa_operator::controller::Settings;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;

use crate::common::{Cluster, eventually, example, sim_operator};

const NS: &str = "payments";
const NETWORK: &str = "clinic-net";
const PIPELINE: &str = "clinic-payments";

/// One document of examples/stack.yaml, its deletion policy Delete.
pub fn example_document(kind: &str) -> String {
    example(kind).replace("deletionPolicy: Retain", "deletionPolicy: Delete")
}

async fn condition<K>(api: &Api<K>, name: &str, type_: &str) -> Option<Condition>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: serde::Serialize,
{
    let value = serde_json::to_value(api.get_opt(name).await.ok()??).ok()?;
    let conditions: Vec<Condition> =
        serde_json::from_value(value["status"]["conditions"].clone()).ok()?;
    conditions.into_iter().find(|c| c.type_ == type_)
}

/// Resources on the simulated AWS tagged with the pipeline as their owner.
fn pipeline_resources(sim: &SimCloud) -> Vec<(Kind, String)> {
    let owner = Owner::new("PaymentPipeline", NS, PIPELINE).to_string();
    sim.resources()
        .into_iter()
        .filter(|(_, o)| o.tags.get(TAG_OWNER) == Some(&owner))
        .map(|(kind, o)| (kind, o.id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_waits_for_its_network_converges_remediates_drift_and_deletes() {
    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace(NS).await;
    // AWS's latencies x 0.01: NAT gateways, functions Pending, the table CREATING.
    let sim = SimCloud::new(SimConfig {
        time_scale: 0.01,
        ..SimConfig::default()
    });
    let settings = Settings {
        // Drift is found by the resync (the network's Ready reaches the pipeline by a
        // watch: the start time printed below is well under it).
        resync: Duration::from_secs(5),
        pending_requeue: Duration::from_millis(200),
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(4),
        ..Settings::default()
    };
    let op = sim_operator(&c, &sim, settings).await;
    let pipelines = Api::<PaymentPipeline>::namespaced(c.client(), NS);
    let networks = Api::<HipaaNetwork>::namespaced(c.client(), NS);

    // The pipeline first: it waits for its network, calling nothing.
    let file = c.home.join("pipeline.yaml");
    std::fs::write(&file, example_document("PaymentPipeline")).unwrap();
    c.kubectl_ok(&["apply", "-n", NS, "-f", file.to_str().unwrap()])
        .await;
    let waiting = eventually(Duration::from_secs(30), "WaitingForReference", || async {
        condition(&pipelines, PIPELINE, "Ready")
            .await
            .filter(|c| c.reason == "WaitingForReference")
    })
    .await;
    assert!(waiting.message.contains(NETWORK), "{}", waiting.message);
    assert!(sim.calls().is_empty(), "no AWS call: {:?}", sim.calls());

    // The network: the pipeline's first resource appears once it is Ready, not before.
    let file = c.home.join("network.yaml");
    std::fs::write(&file, example_document("HipaaNetwork")).unwrap();
    c.kubectl_ok(&["apply", "-n", NS, "-f", file.to_str().unwrap()])
        .await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut network_ready = None;
    loop {
        assert!(Instant::now() < deadline, "the pipeline never started");
        let started = !pipeline_resources(&sim).is_empty();
        if network_ready.is_none() {
            let ready = condition(&networks, NETWORK, "Ready")
                .await
                .is_some_and(|c| c.status == "True");
            if ready {
                network_ready = Some(Instant::now());
            } else {
                assert!(
                    !started,
                    "the pipeline made a resource before its network was Ready"
                );
            }
        }
        if let (Some(at), true) = (network_ready, started) {
            println!(
                "network Ready -> the pipeline's first AWS resource: {:.3} s (resync 5 s, polled every 10 ms)",
                at.elapsed().as_secs_f64()
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(Duration::from_secs(240), "the pipeline Ready", || async {
        condition(&pipelines, PIPELINE, "Ready")
            .await
            .filter(|c| c.status == "True")
    })
    .await;

    let status = pipelines.get(PIPELINE).await.unwrap().status.unwrap();
    for (what, value) in [
        ("queueUrl", &status.queue_url),
        ("deadLetterQueueUrl", &status.dead_letter_queue_url),
        ("topicArn", &status.topic_arn),
        ("paymentFunctionArn", &status.payment_function_arn),
        ("pollerFunctionArn", &status.poller_function_arn),
        ("eventSourceMappingId", &status.event_source_mapping_id),
        ("tableName", &status.table_name),
        ("tableArn", &status.table_arn),
        ("kmsKeyArn", &status.kms_key_arn),
    ] {
        assert!(
            value.as_deref().is_some_and(|v| !v.is_empty()),
            "status.{what}: {value:?}"
        );
    }
    let rows: Vec<(String, ControlResult)> = status
        .common
        .compliance
        .iter()
        .map(|e| (e.id.clone(), e.result))
        .collect();
    assert_eq!(
        rows.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        hipaa_operator::compliance::PAYMENT_CONTROLS.to_vec()
    );
    for (id, result) in &rows {
        assert_eq!(
            *result,
            ControlResult::Passed,
            "{id}: {:?}",
            status.common.compliance
        );
    }
    assert_eq!(
        status.common.resources.len(),
        13,
        "{:?}",
        status.common.resources
    );
    // The functions run in the network's private subnets.
    let network = networks.get(NETWORK).await.unwrap().status.unwrap();
    let payment = sim
        .resources()
        .into_iter()
        .find_map(|(_, o)| match o.spec {
            Spec::LambdaFunction(f)
                if Some(&o.arn.clone().unwrap_or_default())
                    == status.payment_function_arn.as_ref() =>
            {
                Some(f)
            }
            _ => None,
        })
        .expect("the payment function on AWS");
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    assert_eq!(
        sorted(payment.subnet_ids.clone()),
        sorted(network.private_subnet_ids.clone())
    );
    assert_eq!(
        payment.environment.get("PAYMENT_TOPIC_ARN"),
        status.topic_arn.as_ref()
    );

    // Point-in-time recovery turned off behind the operator's back: drift, then back on.
    let table = status.table_name.clone().unwrap();
    sim.edit(Kind::DynamoDbTable, &table, |spec| {
        if let Spec::DynamoDbTable(t) = spec {
            t.point_in_time_recovery = false
        }
    })
    .unwrap();
    let pitr = |sim: &SimCloud| {
        sim.resources().into_iter().find_map(|(_, o)| match o.spec {
            Spec::DynamoDbTable(DynamoDbTableSpec {
                point_in_time_recovery,
                ..
            }) if o.id == table => Some(point_in_time_recovery),
            _ => None,
        })
    };
    assert_eq!(pitr(&sim), Some(false));
    let drift = eventually(
        Duration::from_secs(60),
        "the PITR drift reported",
        || async {
            let status = pipelines.get(PIPELINE).await.ok()?.status?;
            status
                .common
                .drift
                .into_iter()
                .find(|d| d.resource == "dynamodb/table" && d.field == "pointInTimeRecovery")
        },
    )
    .await;
    assert!(
        drift.change.contains("true") && drift.change.contains("false"),
        "{drift:?}"
    );
    eventually(Duration::from_secs(60), "PITR back on", || async {
        (pitr(&sim) == Some(true)).then_some(())
    })
    .await;

    // Delete: everything goes, the key scheduled for deletion.
    c.kubectl_ok(&["delete", "hpay", PIPELINE, "-n", NS, "--timeout=180s"])
        .await;
    let owner = Owner::new("PaymentPipeline", NS, PIPELINE);
    assert!(
        sim.owned(&owner).await.unwrap().is_empty(),
        "left: {:?}",
        pipeline_resources(&sim)
    );
    c.kubectl_ok(&["delete", "hnet", NETWORK, "-n", NS, "--timeout=300s"])
        .await;
    op.stop().await;
    c.stop().await;
}

/// The example's pipeline through the operator binary on moto, with the real kubectl:
/// both objects Ready, every resource configured as the blueprint says (read through
/// the AWS API, not the operator's view), PITR turned off through the AWS API reported as
/// drift (status and event) and turned on again, and delete leaving nothing tagged with
/// the pipeline (its key scheduled for deletion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_moto_the_example_pipeline_is_built_as_declared_and_pitr_drift_is_remediated() {
    use crate::common::moto::request;
    use hipaa_operator::cloud::aws::{AwsCloud, sdk_config};
    use std::process::Stdio;

    const NS_MOTO: &str = "payments-moto";
    let _moto = crate::common::moto_shared().await;
    let endpoint = crate::contract::moto_endpoint();
    // The functions' code, where the example says it is.
    let pipeline_doc = example_document("PaymentPipeline");
    let spec: PaymentPipeline = serde_yaml_ng::from_str(&pipeline_doc).unwrap();
    for code in [
        &spec.spec.payment_function.code,
        &spec.spec.poller_function.function.code,
    ] {
        let (status, body) = request(
            &endpoint,
            "s3",
            "PUT",
            &format!("/{}", code.s3_bucket),
            "text/plain",
            b"",
        );
        assert!(
            status == 200 || body.contains("BucketAlreadyOwnedByYou"),
            "CreateBucket: {body}"
        );
        let path = format!("/{}/{}", code.s3_bucket, code.s3_key);
        let (status, body) = request(
            &endpoint,
            "s3",
            "PUT",
            &path,
            "application/zip",
            &crate::contract::empty_zip(&code.s3_key),
        );
        assert_eq!(status, 200, "PutObject {path}: {body}");
    }

    let c = Cluster::start().await;
    c.install_crds().await;
    c.create_namespace(NS_MOTO).await;
    let log = c.home.join("operator.log");
    let file = std::fs::File::create(&log).unwrap();
    let _operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_hipaa-operator"))
        .args([
            "run",
            "--cloud",
            "aws",
            "--aws-endpoint-url",
            &endpoint,
            "--kubeconfig",
            c.cluster.kubeconfig_path().to_str().unwrap(),
            "--namespace",
            NS_MOTO,
            "--metrics-addr",
            "127.0.0.1:0",
            "--resync-interval",
            "3s",
            "--pending-requeue",
            "500ms",
        ])
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .kill_on_drop(true)
        .spawn()
        .expect("the operator binary starts");
    for kind in ["HipaaNetwork", "PaymentPipeline"] {
        let file = c.home.join(format!("{kind}.yaml"));
        std::fs::write(&file, example_document(kind)).unwrap();
        c.kubectl_ok(&["apply", "-n", NS_MOTO, "-f", file.to_str().unwrap()])
            .await;
    }
    for object in [format!("hnet/{NETWORK}"), format!("hpay/{PIPELINE}")] {
        let out = c
            .kubectl(&[
                "wait",
                "--for=condition=Ready",
                &object,
                "-n",
                NS_MOTO,
                "--timeout=300s",
            ])
            .await;
        assert!(
            out.status.success(),
            "{object} Ready: {}\n{}",
            crate::common::stderr(&out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let pipelines = Api::<PaymentPipeline>::namespaced(c.client(), NS_MOTO);
    let status = pipelines.get(PIPELINE).await.unwrap().status.unwrap();
    let network = Api::<HipaaNetwork>::namespaced(c.client(), NS_MOTO)
        .get(NETWORK)
        .await
        .unwrap()
        .status
        .unwrap();
    for e in &status.common.compliance {
        assert_eq!(e.result, ControlResult::Passed, "{}: {}", e.id, e.detail);
    }

    // Read back through the AWS API.
    let config = sdk_config("us-east-1", Some(&endpoint)).await;
    let key = status.kms_key_arn.clone().unwrap();
    let topic = status.topic_arn.clone().unwrap();
    let sns = aws_sdk_sns::Client::new(&config);
    let attributes = sns
        .get_topic_attributes()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    assert_eq!(
        attributes.get("KmsMasterKeyId"),
        Some(&key),
        "the topic's key"
    );
    let subscriptions = sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue_url = status.queue_url.clone().unwrap();
    let queue = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let attr = |name: &str| {
        queue
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let queue_arn = attr("QueueArn");
    assert!(
        subscriptions
            .subscriptions()
            .iter()
            .any(|s| s.endpoint() == Some(queue_arn.as_str()) && s.protocol() == Some("sqs")),
        "the queue is subscribed to the topic"
    );
    assert_eq!(attr("KmsMasterKeyId"), key, "the queue's key");
    let redrive: serde_json::Value = serde_json::from_str(&attr("RedrivePolicy")).unwrap();
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        spec.spec.queue.max_receive_count.to_string()
    );
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with("-payments-dlq"),
        "{redrive}"
    );
    let policy = attr("Policy");
    assert!(
        policy.contains(&topic) && policy.contains("aws:SourceArn"),
        "{policy}"
    );
    assert_eq!(
        attr("VisibilityTimeout"),
        spec.spec.queue.visibility_timeout_seconds.to_string()
    );

    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table_name = status.table_name.clone().unwrap();
    let table = dynamodb
        .describe_table()
        .table_name(&table_name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(table.deletion_protection_enabled(), Some(true));
    assert_eq!(
        table.sse_description().and_then(|s| s.kms_master_key_arn()),
        Some(key.as_str())
    );
    let pitr = || async {
        dynamodb
            .describe_continuous_backups()
            .table_name(&table_name)
            .send()
            .await
            .unwrap()
            .continuous_backups_description
            .and_then(|c| c.point_in_time_recovery_description)
            .and_then(|p| p.point_in_time_recovery_status)
            .map(|s| s.as_str().to_string())
    };
    assert_eq!(pitr().await.as_deref(), Some("ENABLED"));

    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = lambda
        .get_function_configuration()
        .function_name(status.payment_function_arn.clone().unwrap())
        .send()
        .await
        .unwrap();
    let mut subnets = function
        .vpc_config()
        .map(|v| v.subnet_ids().to_vec())
        .unwrap_or_default();
    subnets.sort();
    let mut private = network.private_subnet_ids.clone();
    private.sort();
    assert_eq!(
        subnets, private,
        "the payment function in the network's private subnets"
    );
    assert_eq!(function.kms_key_arn(), Some(key.as_str()));
    assert_eq!(
        function
            .environment()
            .and_then(|e| e.variables())
            .and_then(|v| v.get("PAYMENT_TOPIC_ARN")),
        Some(&topic)
    );
    let mappings = lambda
        .list_event_source_mappings()
        .event_source_arn(&queue_arn)
        .send()
        .await
        .unwrap();
    let mapping = mappings
        .event_source_mappings()
        .first()
        .expect("the queue's mapping");
    assert_eq!(
        mapping.function_arn(),
        status.poller_function_arn.as_deref(),
        "the queue invokes the poller"
    );
    assert_eq!(
        mapping.batch_size(),
        Some(spec.spec.poller_function.batch_size)
    );

    // PITR off through the AWS API: drift in status and as an event, and back on.
    dynamodb
        .update_continuous_backups()
        .table_name(&table_name)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(false)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pitr().await.as_deref(), Some("DISABLED"));
    eventually(
        Duration::from_secs(60),
        "the PITR drift in status",
        || async {
            let status = pipelines.get(PIPELINE).await.ok()?.status?;
            status
                .common
                .drift
                .into_iter()
                .find(|d| d.resource == "dynamodb/table" && d.field == "pointInTimeRecovery")
        },
    )
    .await;
    eventually(Duration::from_secs(60), "a DriftDetected event", || async {
        let events = c
            .kubectl_ok(&["get", "events", "-n", NS_MOTO, "-o", "json"])
            .await;
        events
            .contains("DriftDetected")
            .then_some(())
            .filter(|_| events.contains("pointInTimeRecovery"))
    })
    .await;
    eventually(Duration::from_secs(60), "PITR on again", || async {
        (pitr().await.as_deref() == Some("ENABLED")).then_some(())
    })
    .await;

    // Delete: nothing tagged with the pipeline remains; its key is scheduled for deletion.
    c.kubectl_ok(&["delete", "hpay", PIPELINE, "-n", NS_MOTO, "--timeout=180s"])
        .await;
    let cloud = AwsCloud::new(&config, "us-east-1");
    let owner = Owner::new("PaymentPipeline", NS_MOTO, PIPELINE);
    assert_eq!(
        cloud.owned(&owner).await.unwrap(),
        vec![],
        "nothing of the pipeline left"
    );
    let kms = aws_sdk_kms::Client::new(&config);
    let key_state = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .key_metadata
        .and_then(|m| m.key_state)
        .map(|s| s.as_str().to_string());
    assert_eq!(key_state.as_deref(), Some("PendingDeletion"));
    c.kubectl_ok(&["delete", "hnet", NETWORK, "-n", NS_MOTO, "--timeout=180s"])
        .await;
}
