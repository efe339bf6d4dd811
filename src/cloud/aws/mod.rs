//! The real AWS behind the Provider boundary, with the AWS SDK for Rust (EC2, KMS,
//! CloudWatch Logs, IAM, Lambda). One module per
//! resource kind with the same four verbs (observe, create, update, delete) plus `owned`
//! (the kind's resources tagged with an owner), each taking its kind's spec struct; this
//! file holds what they share: the dispatch (exhaustive matches over `Spec` and `Kind`),
//! the clients, call counting and error classification (not-found codes from the kind
//! registry), and the tag helpers.
//!
//! Services: EC2, KMS, CloudWatch Logs, IAM, SNS, SQS and DynamoDB, one client each.
//! Clients come from aws-config's default chain (environment, web identity / IRSA,
//! profile); the endpoint can be overridden (`AWS_ENDPOINT_URL`, or `--aws-endpoint-url`)
//! to reach moto's server in tests. The SDK's own retry is adaptive with 3 attempts; the
//! engine classifies what still fails. HTTPS is rustls on ring with the native root
//! certificates ([`https_client`]).

mod default_sg;
mod dynamodb;
mod eip;
mod event_source_mapping;
mod flow_log;
mod iam;
mod igw;
mod instance;
mod kms;
mod lambda_function;
mod logs;
mod nat;
mod route_table;
mod security_group;
mod sns;
mod sqs;
mod subnet;
mod vpc;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpClient};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_types::request_id::RequestId;

use super::{
    CallCounts, CallOutcome, CloudError, Desired, ElasticIpSpec, FlowLogSpec, Kind, Lookup,
    NatGatewaySpec, Observed, Owned, Owner, Provider, RouteTableSpec, Spec, TAG_NODE, TAG_OWNER,
    audit, observed_as,
};

/// AWS in one region.
#[derive(Clone)]
pub struct AwsCloud {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) kms: aws_sdk_kms::Client,
    pub(crate) logs: aws_sdk_cloudwatchlogs::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) sns: aws_sdk_sns::Client,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) dynamodb: aws_sdk_dynamodb::Client,
    pub(crate) lambda: aws_sdk_lambda::Client,
    pub(crate) region: String,
    calls: Arc<Mutex<CallCounts>>,
}

impl std::fmt::Debug for AwsCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCloud")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Every page of a paginated call: `page(token)` makes one call and returns its items and
/// the next token; an absent or empty token is the last page. Errors end the walk.
pub(crate) async fn paginate<T, F, Fut>(mut page: F) -> Result<Vec<T>, CloudError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), CloudError>>,
{
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let (items, next) = page(token.take()).await?;
        out.extend(items);
        match next {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(out),
        }
    }
}

/// Loads the shared SDK configuration: our HTTPS client ([`https_client`]), default
/// credential chain, adaptive retries, and `endpoint_url` (else `AWS_ENDPOINT_URL`, which
/// aws-config reads itself) when given.
pub async fn sdk_config(region: &str, endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .region(aws_config::Region::new(region.to_string()))
        .retry_config(aws_config::retry::RetryConfig::adaptive().with_max_attempts(3));
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The HTTP client of every SDK client and credential provider: hyper with rustls on
/// *ring* (the crypto the kube client and the devcluster use already), trusting the
/// platform's native root certificates (`rustls-native-certs`: the system store, or
/// `SSL_CERT_FILE`), with `HTTPS_PROXY`/`NO_PROXY` honoured. It is what the SDK's
/// `default-https-client` feature builds, except for the crypto: that feature pulls in
/// aws-lc-rs, a large C build. Plain `http://` endpoints (moto in the tests) work too.
pub fn https_client() -> SharedHttpClient {
    // `build_with_connector_fn` is how aws-smithy-runtime builds its default client; the
    // public `build_https` would drop the proxy settings.
    aws_smithy_http_client::Builder::new().build_with_connector_fn(connector)
}

/// One connector for the given timeouts, as the SDK's default client makes it.
fn connector(
    settings: Option<&HttpConnectorSettings>,
    components: Option<&RuntimeComponents>,
) -> aws_smithy_http_client::Connector {
    let mut builder = aws_smithy_http_client::Connector::builder().tls_provider(
        aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ),
    );
    builder.set_connector_settings(settings.cloned());
    if let Some(components) = components {
        builder.set_sleep_impl(components.sleep_impl());
    }
    builder.set_proxy_config(Some(aws_smithy_http_client::proxy::ProxyConfig::from_env()));
    builder.build()
}

impl AwsCloud {
    /// Clients for `region` from a loaded SDK configuration (cheap: no I/O).
    pub fn new(config: &aws_config::SdkConfig, region: &str) -> Self {
        let region_value = aws_config::Region::new(region.to_string());
        let ec2 = aws_sdk_ec2::config::Builder::from(config)
            .region(region_value.clone())
            .build();
        let kms = aws_sdk_kms::config::Builder::from(config)
            .region(region_value.clone())
            .build();
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(config)
            .region(region_value.clone())
            .build();
        let iam = aws_sdk_iam::config::Builder::from(config)
            .region(region_value.clone())
            .build();
        let sns = aws_sdk_sns::config::Builder::from(config)
            .region(region_value.clone())
            .build();
        let sqs = aws_sdk_sqs::config::Builder::from(config)
            .region(region_value.clone())
            .build();
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(config)
            .region(region_value.clone())
            .build();
        let lambda = aws_sdk_lambda::config::Builder::from(config)
            .region(region_value)
            .build();
        Self {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            kms: aws_sdk_kms::Client::from_conf(kms),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs),
            iam: aws_sdk_iam::Client::from_conf(iam),
            sns: aws_sdk_sns::Client::from_conf(sns),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            lambda: aws_sdk_lambda::Client::from_conf(lambda),
            region: region.to_string(),
            calls: Arc::new(Mutex::new(CallCounts::new())),
        }
    }

    /// Forgets the calls counted so far.
    pub fn reset_calls(&self) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn count(&self, service: &str, operation: &str, outcome: CallOutcome) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        *calls
            .entry((service.to_string(), operation.to_string(), outcome))
            .or_default() += 1;
    }

    /// Counts one SDK call, writes its audit line when it changes something, and
    /// classifies its error. Every SDK call goes through here.
    pub(crate) fn done<T, E>(
        &self,
        service: &str,
        operation: &str,
        result: Result<T, SdkError<E, HttpResponse>>,
    ) -> Result<T, CloudError>
    where
        T: RequestId,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match result {
            Ok(value) => {
                self.count(service, operation, CallOutcome::Ok);
                audit::record(service, operation, CallOutcome::Ok, value.request_id());
                Ok(value)
            }
            Err(error) => {
                let classified = classify(operation, &error);
                let outcome = match &classified {
                    CloudError::Throttled { .. } => CallOutcome::Throttled,
                    CloudError::Server { .. } => CallOutcome::ServerError,
                    _ => CallOutcome::ClientError,
                };
                self.count(service, operation, outcome);
                let request_id = error
                    .request_id()
                    .or_else(|| error.as_service_error().and_then(|e| e.meta().request_id()));
                audit::record(service, operation, outcome, request_id);
                Err(classified)
            }
        }
    }
}

const THROTTLING: [&str; 7] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
];

/// An SDK error as the engine's retry policy needs it.
pub(crate) fn classify<E>(operation: &str, error: &SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let operation = operation.to_string();
    match error {
        SdkError::ServiceError(context) => classify_code(
            operation,
            // An answer without an error code: a 404 says not found (moto answers a
            // missing event source mapping's update and delete so).
            context
                .err()
                .code()
                .unwrap_or(match context.raw().status().as_u16() {
                    404 => "NotFound",
                    _ => "Unknown",
                }),
            context.err().message().unwrap_or_default(),
            context.raw().status().as_u16(),
        ),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            CloudError::Server {
                operation,
                message: format!("{error}"),
            }
        }
        other => CloudError::Terminal {
            operation,
            code: "ConstructionFailure".into(),
            message: format!("{other}"),
        },
    }
}

/// An AWS error code (with its message and HTTP status) as the engine's retry policy needs
/// it. Not found: a code the kind registry lists for some kind (`KindInfo::not_found`),
/// or EC2's `<Thing>.NotFound` convention.
fn classify_code(operation: String, code: &str, message: &str, status: u16) -> CloudError {
    let (code, message) = (code.to_string(), message.to_string());
    if THROTTLING.contains(&code.as_str()) || status == 429 {
        CloudError::Throttled { operation, message }
    } else if code == "DependencyViolation"
        || code.ends_with(".InUse")
        || code == "InvalidIPAddress.InUse"
    {
        CloudError::DependencyViolation { operation, message }
    } else if Kind::of_not_found_code(&code).is_some() || code.ends_with("NotFound") {
        CloudError::NotFound {
            operation,
            message: format!("{code}: {message}"),
        }
    } else if status >= 500 {
        CloudError::Server {
            operation,
            message: format!("{code}: {message}"),
        }
    } else {
        CloudError::Terminal {
            operation,
            code,
            message,
        }
    }
}

/// EC2 tags from a map.
pub(crate) fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect()
}

/// A TagSpecification: tags applied atomically at creation.
pub(crate) fn tag_specification(
    resource: aws_sdk_ec2::types::ResourceType,
    tags: &BTreeMap<String, String>,
) -> aws_sdk_ec2::types::TagSpecification {
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(resource)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

/// EC2 tags as a map.
pub(crate) fn from_ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// The EC2 filter for resources tagged with `owner`.
pub(crate) fn owner_filter(owner: &Owner) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name(format!("tag:{TAG_OWNER}"))
        .values(owner.to_string())
        .build()
}

/// Picks, for each lookup, the resource with the recorded id, else the one tagged with
/// the lookup's node (the oldest when several are: the caller passes them oldest first).
pub(crate) fn match_lookups(lookups: &[Lookup], found: Vec<Observed>) -> Vec<Option<Observed>> {
    lookups
        .iter()
        .map(|lookup| {
            lookup
                .recorded_id
                .as_ref()
                .and_then(|id| found.iter().find(|o| &o.id == id))
                .or_else(|| {
                    found
                        .iter()
                        .find(|o| o.tags.get(TAG_NODE) == Some(&lookup.node))
                })
                .cloned()
        })
        .collect()
}

/// EC2 tags that must be added or changed to make `observed` carry `desired` (tags are
/// never removed: others' tags are not ours to delete).
pub(crate) fn missing_tags(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Adds missing tags to an EC2 resource.
pub(crate) async fn ensure_ec2_tags(
    cloud: &AwsCloud,
    id: &str,
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> Result<(), CloudError> {
    let missing = missing_tags(desired, observed);
    if missing.is_empty() {
        return Ok(());
    }
    let result = cloud
        .ec2
        .create_tags()
        .resources(id)
        .set_tags(Some(ec2_tags(&missing)))
        .send()
        .await;
    cloud.done("ec2", "CreateTags", result).map(|_| ())
}

impl Provider for AwsCloud {
    async fn observe(
        &self,
        kind: Kind,
        owner: &Owner,
        lookups: &[Lookup],
    ) -> Result<Vec<Option<Observed>>, CloudError> {
        match kind {
            Kind::KmsKey => kms::observe(self, owner, lookups).await,
            Kind::LogGroup => logs::observe(self, owner, lookups).await,
            Kind::IamRole => iam::observe(self, owner, lookups).await,
            Kind::Vpc => vpc::observe(self, owner, lookups).await,
            Kind::DefaultSecurityGroup => default_sg::observe(self, owner, lookups).await,
            Kind::Subnet => subnet::observe(self, owner, lookups).await,
            Kind::InternetGateway => igw::observe(self, owner, lookups).await,
            Kind::ElasticIp => eip::observe(self, owner, lookups).await,
            Kind::NatGateway => nat::observe(self, owner, lookups).await,
            Kind::RouteTable => route_table::observe(self, owner, lookups).await,
            Kind::SecurityGroup => security_group::observe(self, owner, lookups).await,
            Kind::Instance => instance::observe(self, owner, lookups).await,
            Kind::FlowLog => flow_log::observe(self, owner, lookups).await,
            Kind::SnsTopic => sns::observe(self, owner, lookups).await,
            Kind::SqsQueue => sqs::observe(self, owner, lookups).await,
            Kind::DynamoDbTable => dynamodb::observe(self, owner, lookups).await,
            Kind::LambdaFunction => lambda_function::observe(self, owner, lookups).await,
            Kind::EventSourceMapping => event_source_mapping::observe(self, owner, lookups).await,
        }
    }

    async fn create(&self, d: &Desired) -> Result<Observed, CloudError> {
        match &d.spec {
            Spec::KmsKey(spec) => kms::create(self, d, spec).await,
            Spec::LogGroup(spec) => logs::create(self, d, spec).await,
            Spec::IamRole(spec) => iam::create(self, d, spec).await,
            Spec::Vpc(spec) => vpc::create(self, d, spec).await,
            Spec::DefaultSecurityGroup(spec) => default_sg::create(self, d, spec).await,
            Spec::Subnet(spec) => subnet::create(self, d, spec).await,
            Spec::InternetGateway(spec) => igw::create(self, d, spec).await,
            Spec::ElasticIp(_) => eip::create(self, d).await,
            Spec::NatGateway(spec) => nat::create(self, d, spec).await,
            Spec::RouteTable(spec) => route_table::create(self, d, spec).await,
            Spec::SecurityGroup(spec) => security_group::create(self, d, spec).await,
            Spec::Instance(spec) => instance::create(self, d, spec).await,
            Spec::FlowLog(spec) => flow_log::create(self, d, spec).await,
            Spec::SnsTopic(spec) => sns::create(self, d, spec).await,
            Spec::SqsQueue(spec) => sqs::create(self, d, spec).await,
            Spec::DynamoDbTable(spec) => dynamodb::create(self, d, spec).await,
            Spec::LambdaFunction(spec) => lambda_function::create(self, d, spec).await,
            Spec::EventSourceMapping(spec) => event_source_mapping::create(self, d, spec).await,
        }
    }

    /// Each kind's update gets the desired and the observed spec of its kind (another
    /// kind is refused).
    async fn update(&self, d: &Desired, o: &Observed) -> Result<Observed, CloudError> {
        match &d.spec {
            Spec::KmsKey(want) => kms::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::LogGroup(want) => logs::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::IamRole(want) => iam::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::Vpc(want) => vpc::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::DefaultSecurityGroup(want) => {
                default_sg::update(self, d, o, want, observed_as(d, o)?).await
            }
            Spec::Subnet(want) => subnet::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::InternetGateway(want) => igw::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::ElasticIp(_) => {
                observed_as::<ElasticIpSpec>(d, o)?;
                eip::update(self, d, o).await
            }
            Spec::NatGateway(_) => {
                observed_as::<NatGatewaySpec>(d, o)?;
                nat::update(self, d, o).await
            }
            Spec::RouteTable(want) => {
                observed_as::<RouteTableSpec>(d, o)?;
                route_table::update(self, d, o, want).await
            }
            Spec::SecurityGroup(want) => {
                security_group::update(self, d, o, want, observed_as(d, o)?).await
            }
            Spec::Instance(want) => instance::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::FlowLog(_) => {
                observed_as::<FlowLogSpec>(d, o)?;
                flow_log::update(self, d, o).await
            }
            Spec::SnsTopic(want) => sns::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::SqsQueue(want) => sqs::update(self, d, o, want, observed_as(d, o)?).await,
            Spec::DynamoDbTable(want) => {
                dynamodb::update(self, d, o, want, observed_as(d, o)?).await
            }
            Spec::LambdaFunction(want) => {
                lambda_function::update(self, d, o, want, observed_as(d, o)?).await
            }
            Spec::EventSourceMapping(want) => {
                event_source_mapping::update(self, d, o, want, observed_as(d, o)?).await
            }
        }
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<(), CloudError> {
        let result = match kind {
            Kind::KmsKey => kms::delete(self, id).await,
            Kind::LogGroup => logs::delete(self, id).await,
            Kind::IamRole => iam::delete(self, id).await,
            Kind::Vpc => vpc::delete(self, id).await,
            // `DeleteMode::WithParent`: it goes with its VPC.
            Kind::DefaultSecurityGroup => Ok(()),
            Kind::Subnet => subnet::delete(self, id).await,
            Kind::InternetGateway => igw::delete(self, id).await,
            Kind::ElasticIp => eip::delete(self, id).await,
            Kind::NatGateway => nat::delete(self, id).await,
            Kind::RouteTable => route_table::delete(self, id).await,
            Kind::SecurityGroup => security_group::delete(self, id).await,
            Kind::Instance => instance::delete(self, id).await,
            Kind::FlowLog => flow_log::delete(self, id).await,
            Kind::SnsTopic => sns::delete(self, id).await,
            Kind::SqsQueue => sqs::delete(self, id).await,
            Kind::DynamoDbTable => dynamodb::delete(self, id).await,
            Kind::LambdaFunction => lambda_function::delete(self, id).await,
            Kind::EventSourceMapping => event_source_mapping::delete(self, id).await,
        };
        // Not-found on delete is success.
        match result {
            Err(CloudError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// One search per kind, in `Kind::ALL` order.
    async fn owned(&self, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
        let mut all = Vec::new();
        for kind in Kind::ALL {
            all.extend(match kind {
                Kind::KmsKey => kms::owned(self, owner).await?,
                Kind::LogGroup => logs::owned(self, owner).await?,
                Kind::IamRole => iam::owned(self, owner).await?,
                Kind::Vpc => vpc::owned(self, owner).await?,
                // Found through its VPC and deleted with it: never left over on its own.
                Kind::DefaultSecurityGroup => Vec::new(),
                Kind::Subnet => subnet::owned(self, owner).await?,
                Kind::InternetGateway => igw::owned(self, owner).await?,
                Kind::ElasticIp => eip::owned(self, owner).await?,
                Kind::NatGateway => nat::owned(self, owner).await?,
                Kind::RouteTable => route_table::owned(self, owner).await?,
                Kind::SecurityGroup => security_group::owned(self, owner).await?,
                Kind::Instance => instance::owned(self, owner).await?,
                Kind::FlowLog => flow_log::owned(self, owner).await?,
                Kind::SnsTopic => sns::owned(self, owner).await?,
                Kind::SqsQueue => sqs::owned(self, owner).await?,
                Kind::DynamoDbTable => dynamodb::owned(self, owner).await?,
                Kind::LambdaFunction => lambda_function::owned(self, owner).await?,
                Kind::EventSourceMapping => event_source_mapping::owned(self, owner).await?,
            });
        }
        Ok(all)
    }

    fn calls(&self) -> CallCounts {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn availability_zones(&self, region: &str) -> Result<Vec<String>, CloudError> {
        // The zones of `region`, which need not be this provider's own.
        let result = if region == self.region {
            self.ec2.describe_availability_zones().send().await
        } else {
            let config = self
                .ec2
                .config()
                .to_builder()
                .region(aws_config::Region::new(region.to_string()))
                .build();
            aws_sdk_ec2::Client::from_conf(config)
                .describe_availability_zones()
                .send()
                .await
        };
        let output = self.done("ec2", "DescribeAvailabilityZones", result)?;
        Ok(output
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(String::from))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{DeleteMode, Spec, State};

    #[test]
    fn error_codes_are_classified_for_the_retry_policy() {
        let class = |code: &str, status: u16| {
            classify_code("Op".into(), code, "message", status)
                .category()
                .to_string()
        };
        for kind in Kind::ALL {
            for code in kind.info().not_found {
                assert_eq!(class(code, 400), "not_found", "{kind:?}: {code}");
            }
        }
        let rows = [
            ("RequestLimitExceeded", 400, "throttled"),
            ("Anything", 429, "throttled"),
            ("DependencyViolation", 400, "dependency_violation"),
            ("InvalidIPAddress.InUse", 400, "dependency_violation"),
            // EC2's convention for things that are not kinds (an AMI, a key pair).
            ("InvalidAMIID.NotFound", 400, "not_found"),
            ("InternalError", 500, "server_error"),
            ("InvalidParameterValue", 400, "client_error"),
            ("AccessDenied", 403, "client_error"),
        ];
        for (code, status, want) in rows {
            assert_eq!(class(code, status), want, "{code} {status}");
        }
    }

    /// A client whose every call fails at once (nothing listens on port 1): what a kind
    /// decides without calling AWS can be checked without moto.
    async fn offline() -> AwsCloud {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIDOFFLINE",
                "offline",
                None,
                None,
                "offline",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        AwsCloud::new(&config, "us-east-1")
    }

    #[tokio::test]
    async fn update_refuses_every_immutable_field_before_any_call() {
        let cloud = offline().await;
        for kind in Kind::ALL {
            for field in kind.info().immutable {
                let have = Observed {
                    id: "res-0123456789abcdef0".into(),
                    arn: None,
                    state: State::Available,
                    spec: Spec::example(kind),
                    tags: Default::default(),
                    attributes: Default::default(),
                };
                let want = Desired {
                    node: "x".into(),
                    spec: have.spec.with_changed(field),
                    tags: Default::default(),
                    client_token: String::new(),
                };
                cloud.reset_calls();
                let err = cloud.update(&want, &have).await.unwrap_err();
                assert!(
                    matches!(&err, CloudError::Terminal { code, .. } if code == "InvalidParameterValue")
                        && err.to_string().contains(field),
                    "{kind:?} {field}: {err}"
                );
                assert!(cloud.calls().is_empty(), "{kind:?} {field}: no call");
            }
        }
    }

    #[tokio::test]
    async fn only_kinds_deleted_with_their_parent_delete_without_a_call() {
        let cloud = offline().await;
        for kind in Kind::ALL {
            cloud.reset_calls();
            let result = cloud.delete(kind, "res-0123456789abcdef0").await;
            let with_parent = kind.info().deletion == DeleteMode::WithParent;
            assert_eq!(cloud.calls().is_empty(), with_parent, "{kind:?}");
            assert_eq!(result.is_ok(), with_parent, "{kind:?}: {result:?}");
        }
    }

    /// No network: the connector is what the first request builds (rustls on ring with
    /// the native roots loaded), and the loaded SDK configuration carries our client (the
    /// SDK has no default one: its `default-https-client` feature is off).
    #[tokio::test]
    async fn the_sdk_config_carries_the_rustls_ring_https_client() {
        let _connector = connector(Some(&HttpConnectorSettings::default()), None);
        let config = sdk_config("us-east-1", None).await;
        assert!(
            config.http_client().is_some(),
            "the SDK config has an HTTP client"
        );
        let ec2 = aws_sdk_ec2::config::Builder::from(&config).build();
        assert!(
            ec2.http_client().is_some(),
            "service clients inherit the HTTP client"
        );
    }

    /// moto answers every Describe in one page, so the page walk is checked here with
    /// pages made up in memory (the only stand-in in this module).
    #[tokio::test]
    async fn paginate_follows_tokens_until_an_absent_or_empty_one() {
        // (pages as (items, next token), expected items, calls): each row is one shape of
        // AWS pagination.
        type Page = (Vec<u32>, Option<&'static str>);
        let rows: Vec<(Vec<Page>, Vec<u32>, usize)> = vec![
            (vec![(vec![1, 2], None)], vec![1, 2], 1),
            (
                vec![(vec![1], Some("a")), (vec![2], Some("b")), (vec![3], None)],
                vec![1, 2, 3],
                3,
            ),
            // EC2 sometimes ends with an empty string token instead of none.
            (vec![(vec![1], Some("a")), (vec![], Some(""))], vec![1], 2),
        ];
        for (pages, want, calls) in rows {
            let mut seen_tokens = Vec::new();
            let got = paginate(|token| {
                seen_tokens.push(token.clone());
                let (items, next) = pages[seen_tokens.len() - 1].clone();
                async move { Ok((items, next.map(String::from))) }
            })
            .await
            .unwrap();
            assert_eq!(got, want);
            assert_eq!(seen_tokens.len(), calls);
            assert_eq!(seen_tokens[0], None, "the first call has no token");
        }
        // An error on a later page ends the walk with that error.
        let failed = paginate(|token: Option<String>| async move {
            match token {
                None => Ok((vec![1u32], Some("next".to_string()))),
                Some(_) => Err(CloudError::Throttled {
                    operation: "DescribeVpcs".into(),
                    message: "Rate exceeded".into(),
                }),
            }
        })
        .await;
        assert!(matches!(failed, Err(CloudError::Throttled { .. })));
    }

    /// The zones asked for are the region's asked for, not the provider's own (moto).
    #[tokio::test]
    async fn availability_zones_are_those_of_the_region_asked_for() {
        let endpoint = std::env::var("MOTO_ENDPOINT").expect("run through .ci/with-moto");
        let config = sdk_config("us-east-1", Some(&endpoint)).await;
        let cloud = AwsCloud::new(&config, "us-east-1");
        // (region, every zone starts with it): each row one region.
        for region in ["us-east-1", "eu-west-1"] {
            let zones = cloud.availability_zones(region).await.unwrap();
            assert!(!zones.is_empty(), "{region}");
            assert!(
                zones.iter().all(|z| z.starts_with(region)),
                "{region}: {zones:?}"
            );
        }
    }
}
