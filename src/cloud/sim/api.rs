//! One simulated API call: latency, fault injection, the operation itself under the lock,
//! and the call counter. Plus the AWS-shaped error constructors every kind uses.

use std::collections::BTreeMap;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use super::SimCloud;
use super::world::World;
use crate::cloud::{CallOutcome, CloudError, Kind, Observed};

pub(crate) type Result<T> = std::result::Result<T, CloudError>;

/// Calls made by every simulated account in the process: the simulated request ids.
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl SimCloud {
    /// The state, settled to now. Never held across an await.
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        let mut world = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        world.settle(Instant::now());
        world
    }

    /// Runs `op` as one counted AWS call `service:operation`: it takes the operation's
    /// latency, may fail first with an injected throttle or server error, and is counted
    /// with its outcome.
    pub(crate) async fn call<T>(
        &self,
        service: &str,
        operation: &str,
        op: impl FnOnce(&mut World, Instant) -> Result<T>,
    ) -> Result<T> {
        let (delay, fault) = {
            let mut world = self.world();
            let delay = latency(&mut world, operation);
            (delay, roll_fault(&mut world, service, operation))
        };
        pause(delay).await;
        let mut world = self.world();
        let result = match fault {
            Some(error) => Err(error),
            None => op(&mut world, Instant::now()),
        };
        let outcome = outcome(&result);
        world.count(service, operation, outcome);
        // A request id of its own (not from the RNG, whose sequence the faults follow).
        let request_id = format!(
            "sim-{:012}",
            REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        drop(world);
        crate::cloud::audit::record(service, operation, outcome, Some(&request_id));
        result
    }

    /// The resource as it is now, without an API call (what the call just made returned).
    pub(crate) fn snapshot(&self, kind: Kind, id: &str) -> Result<Observed> {
        self.world()
            .get(kind, id)
            .map(|r| r.observed())
            .ok_or_else(|| missing(kind, id))
    }
}

/// Base latency of an AWS operation, 50–150 ms, ±20 % jitter, scaled.
fn latency(world: &mut World, operation: &str) -> Duration {
    let base = if ["Describe", "List", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
    {
        0.06
    } else if ["Create", "Run", "Allocate", "Put"]
        .iter()
        .any(|p| operation.starts_with(p))
    {
        0.14
    } else if ["Delete", "Terminate", "Release", "Schedule"]
        .iter()
        .any(|p| operation.starts_with(p))
    {
        0.1
    } else {
        0.08
    };
    world.jittered(base, base * 0.2)
}

/// Timers finer than a millisecond are below tokio's resolution: yield instead.
async fn pause(delay: Duration) {
    if delay >= Duration::from_millis(1) {
        tokio::time::sleep(delay).await;
    } else {
        tokio::task::yield_now().await;
    }
}

fn roll_fault(world: &mut World, service: &str, operation: &str) -> Option<CloudError> {
    if world.denied.contains(operation) {
        return Some(CloudError::Terminal {
            operation: operation.to_string(),
            code: "AccessDenied".to_string(),
            message: format!(
                "User: arn:aws:sts::123456789012:assumed-role/hipaa-operator/sim is not authorized to perform: {service}:{operation}"
            ),
        });
    }
    let roll = world.rng.next_f64();
    if roll < world.throttle_rate {
        let code = if service == "ec2" {
            "RequestLimitExceeded"
        } else {
            "ThrottlingException"
        };
        return Some(CloudError::Throttled {
            operation: operation.to_string(),
            message: format!("{code}: Rate exceeded"),
        });
    }
    if world.rng.next_f64() < world.server_error_rate {
        return Some(CloudError::Server {
            operation: operation.to_string(),
            message: "InternalError (500): An internal error has occurred".to_string(),
        });
    }
    None
}

fn outcome<T>(result: &Result<T>) -> CallOutcome {
    match result {
        Ok(_) => CallOutcome::Ok,
        Err(CloudError::Throttled { .. }) => CallOutcome::Throttled,
        Err(CloudError::Server { .. }) => CallOutcome::ServerError,
        Err(_) => CallOutcome::ClientError,
    }
}

pub(crate) fn terminal(operation: &str, code: &str, message: impl Into<String>) -> CloudError {
    CloudError::Terminal {
        operation: operation.to_string(),
        code: code.to_string(),
        message: message.into(),
    }
}

pub(crate) fn not_found(operation: &str, code: &str, message: impl Into<String>) -> CloudError {
    CloudError::NotFound {
        operation: operation.to_string(),
        message: format!("{code}: {}", message.into()),
    }
}

pub(crate) fn dependency(operation: &str, message: impl Into<String>) -> CloudError {
    CloudError::DependencyViolation {
        operation: operation.to_string(),
        message: message.into(),
    }
}

/// The resource does not exist (used outside a counted call).
pub(crate) fn missing(kind: Kind, id: &str) -> CloudError {
    not_found(
        "",
        "NotFound",
        format!("{} {id} does not exist", kind.type_name()),
    )
}

/// A delete of something already gone succeeded.
pub(crate) fn ok_if_missing(result: Result<()>) -> Result<()> {
    match result {
        Err(CloudError::NotFound { .. }) => Ok(()),
        other => other,
    }
}

/// Tag drift: sets the keys `desired` lists whose value differs in `observed` with the
/// kind's tag operation (`CreateTags`, `TagResource`, `TagRole`); removes nothing.
pub(crate) async fn sync_tags(
    sim: &SimCloud,
    kind: Kind,
    id: &str,
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> Result<()> {
    let changed: BTreeMap<String, String> = desired
        .iter()
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let operation = kind.info().tag_operation;
    sim.call(kind.service(), operation, |w, _| {
        let record = w
            .get_mut(kind, id)
            .ok_or_else(|| not_found(operation, "NotFound", format!("{id} not found")))?;
        record.tags.extend(changed);
        Ok(())
    })
    .await
}

pub(crate) trait CloudErrorExt {
    /// The AWS error code of a terminal error.
    fn code(&self) -> Option<&str>;
}

impl CloudErrorExt for CloudError {
    fn code(&self) -> Option<&str> {
        match self {
            CloudError::Terminal { code, .. } => Some(code),
            _ => None,
        }
    }
}
