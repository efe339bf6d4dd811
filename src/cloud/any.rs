//! One concrete provider type for the daemon: the simulated AWS or the AWS SDK, chosen at
//! start. A concrete type (rather than a generic `P: Provider`) lets the compiler prove
//! the engine's futures `Send`, which kube-runtime's controller requires.

use super::aws::AwsCloud;
use super::sim::SimCloud;
use super::{CallCounts, CloudError, Desired, Kind, Lookup, Observed, Owned, Owner, Provider};

/// The simulated AWS or real AWS, behind the same four verbs.
#[derive(Clone, Debug)]
pub enum AnyCloud {
    Sim(SimCloud),
    Aws(AwsCloud),
}

impl Provider for AnyCloud {
    async fn observe(
        &self,
        kind: Kind,
        owner: &Owner,
        lookups: &[Lookup],
    ) -> Result<Vec<Option<Observed>>, CloudError> {
        match self {
            AnyCloud::Sim(c) => c.observe(kind, owner, lookups).await,
            AnyCloud::Aws(c) => c.observe(kind, owner, lookups).await,
        }
    }

    async fn create(&self, desired: &Desired) -> Result<Observed, CloudError> {
        match self {
            AnyCloud::Sim(c) => c.create(desired).await,
            AnyCloud::Aws(c) => c.create(desired).await,
        }
    }

    async fn update(&self, desired: &Desired, observed: &Observed) -> Result<Observed, CloudError> {
        match self {
            AnyCloud::Sim(c) => c.update(desired, observed).await,
            AnyCloud::Aws(c) => c.update(desired, observed).await,
        }
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<(), CloudError> {
        match self {
            AnyCloud::Sim(c) => c.delete(kind, id).await,
            AnyCloud::Aws(c) => c.delete(kind, id).await,
        }
    }

    async fn owned(&self, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
        match self {
            AnyCloud::Sim(c) => c.owned(owner).await,
            AnyCloud::Aws(c) => c.owned(owner).await,
        }
    }

    fn calls(&self) -> CallCounts {
        match self {
            AnyCloud::Sim(c) => c.calls(),
            AnyCloud::Aws(c) => c.calls(),
        }
    }

    async fn availability_zones(&self, region: &str) -> Result<Vec<String>, CloudError> {
        match self {
            AnyCloud::Sim(c) => c.availability_zones(region).await,
            AnyCloud::Aws(c) => c.availability_zones(region).await,
        }
    }
}
