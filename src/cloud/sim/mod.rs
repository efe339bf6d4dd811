//! `sim`: an in-memory AWS account behind the [`Provider`] trait, for the demo, the tests
//! and the benchmarks. It keeps what matters about the real one: AWS id formats, per-call
//! latency, NAT gateway, instance and DynamoDB table state machines that follow the clock,
//! client-token idempotency and name uniqueness (an SQS queue's name held for a minute
//! after its deletion), `DependencyViolation` on deletes, changes AWS allows once per
//! interval (a table's TimeToLive), eventual consistency after creates, injected throttles
//! and 5xx errors, and a counter per AWS operation.
//!
//! Time: every latency and timed state is the real AWS figure times
//! [`SimConfig::time_scale`]; the consistency window is real time. One file per kind (or
//! family) holds its create/update/delete, each taking its kind's spec struct;
//! `observe.rs` the batched Describe* and the tag search, `console.rs` the out-of-band
//! edits a console user makes. What the kinds share comes from the kind registry: the
//! describe call, the tag call, and the resource each lives in (its VPC, its subnet),
//! which the dependency rules follow. Lambda's network interfaces are not resources of
//! their own: a VPC function's subnets and security groups are held by them while it
//! uses them and for a while after (`lambda_function.rs`).

mod api;
mod cidr;
mod console;
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
mod observe;
mod rng;
mod route_table;
mod security_group;
mod sns;
mod sqs;
mod subnet;
mod vpc;
mod world;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{
    CallCounts, CloudError, Desired, ElasticIpSpec, FlowLogSpec, Kind, Lookup, NatGatewaySpec,
    Observed, Owner, Provider, Spec, observed_as,
};
use api::terminal;
use world::World;

/// How the simulated AWS behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// 1.0 = real AWS latencies and state durations; 0.01 = 100x faster.
    pub time_scale: f64,
    /// Probability that a call fails first with a throttle (`RequestLimitExceeded`).
    pub throttle_rate: f64,
    /// Probability that a call (not throttled) fails first with a 5xx `InternalError`.
    pub server_error_rate: f64,
    /// How long (real time, not scaled) a new resource stays invisible to observe/owned.
    pub consistency_window: Duration,
    /// Seed of the RNG behind ids, jitter and faults.
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            time_scale: 1.0,
            throttle_rate: 0.0,
            server_error_rate: 0.0,
            consistency_window: Duration::ZERO,
            seed: 1,
        }
    }
}

impl SimConfig {
    /// 1000x faster than AWS, no faults: for tests.
    pub fn fast() -> Self {
        SimConfig {
            time_scale: 0.001,
            ..SimConfig::default()
        }
    }
}

/// The simulated AWS account. Clones share one state.
#[derive(Clone)]
pub struct SimCloud {
    inner: Arc<Mutex<World>>,
}

impl SimCloud {
    /// An empty account in `us-east-1`.
    pub fn new(config: SimConfig) -> Self {
        SimCloud::with_region(config, "us-east-1")
    }

    /// An empty account in `region` (ARNs and subnet zones follow it).
    pub fn with_region(config: SimConfig, region: &str) -> Self {
        SimCloud {
            inner: Arc::new(Mutex::new(World::new(&config, region))),
        }
    }

    pub fn region(&self) -> String {
        self.world().region.clone()
    }

    /// For every available resource: its `hipaa.dev/node` tag and how long after its
    /// creation it became available (zero for kinds AWS makes available at once). The
    /// benchmark derives the dependency graph's critical path from it.
    pub fn readiness(&self) -> Vec<(String, std::time::Duration)> {
        let mut world = self.world();
        world.settle(std::time::Instant::now());
        world
            .records
            .values()
            .filter(|r| r.state() == super::State::Available)
            .map(|r| {
                (
                    r.tags.get(super::TAG_NODE).cloned().unwrap_or_default(),
                    r.ready_after.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Forgets the calls counted so far.
    pub fn reset_calls(&self) {
        self.world().calls.clear();
    }
}

impl std::fmt::Debug for SimCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let world = self.world();
        f.debug_struct("SimCloud")
            .field("region", &world.region)
            .field("resources", &world.all().count())
            .finish()
    }
}

/// The availability zones the simulation knows, by region.
pub(crate) fn zones_of(region: &str) -> Option<Vec<String>> {
    let letters = match region {
        "us-east-1" => "abcdef",
        "us-west-2" => "abcd",
        "eu-west-1" => "abc",
        _ => return None,
    };
    Some(letters.chars().map(|c| format!("{region}{c}")).collect())
}

impl Provider for SimCloud {
    async fn observe(
        &self,
        kind: Kind,
        owner: &Owner,
        lookups: &[Lookup],
    ) -> Result<Vec<Option<Observed>>, CloudError> {
        observe::observe(self, kind, owner, lookups).await
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
                route_table::update(self, d, o, want, observed_as(d, o)?).await
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
        match kind {
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
        }
    }

    async fn owned(&self, owner: &Owner) -> Result<Vec<super::Owned>, CloudError> {
        observe::owned(self, owner).await
    }

    fn calls(&self) -> CallCounts {
        self.world().calls.clone()
    }

    async fn availability_zones(&self, region: &str) -> Result<Vec<String>, CloudError> {
        self.call("ec2", "DescribeAvailabilityZones", |_, _| {
            zones_of(region).ok_or_else(|| {
                terminal(
                    "DescribeAvailabilityZones",
                    "InvalidParameterValue",
                    format!("unknown region {region}"),
                )
            })
        })
        .await
    }
}
