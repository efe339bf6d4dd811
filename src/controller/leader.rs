//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection
//! does it: the holder renews `renewTime` every `renew_every`; another replica takes the
//! lease once `renewTime + leaseDurationSeconds` has passed. Writes carry the
//! resourceVersion read, so two replicas racing for an expired lease cannot both win.
//!
//! Caveat: expiry compares the holder's `renewTime` with this replica's clock, so clock
//! skew between nodes shortens or lengthens the takeover by the skew (NTP keeps it small).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// One replica's view of the lease.
#[derive(Clone)]
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    renew_every: Duration,
}

impl LeaderElection {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            // Two renewals fit in a lease duration with room for one slow request.
            renew_every: duration / 3,
        }
    }

    /// Takes or renews the lease. `Ok(true)`: this replica holds it now; `Ok(false)`:
    /// another live replica does (or won a race for it).
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = jiff::Timestamp::now();
        let seconds = i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let mut spec = lease.spec.take().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.identity;
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(renewed), Some(d)) => {
                renewed.0 + jiff::SignedDuration::from_secs(i64::from(d)) < now
            }
            _ => true,
        };
        if !mine && !holder.is_empty() && !expired {
            return Ok(false);
        }
        if !mine {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(MicroTime(now));
        lease.spec = Some(spec);
        // `lease` still carries the resourceVersion read above: a concurrent writer wins
        // and this replica sees 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the lease, polling every renew period.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, lease = %self.name, "leader election"),
            }
            tokio::time::sleep(self.renew_every).await;
        }
    }

    /// Renews the lease in the background. The receiver turns `true` when leadership is
    /// lost: another replica holds the lease, or no renewal succeeded for a lease duration
    /// (the others may have taken over by then, so this replica must stop acting).
    pub fn hold(&self) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
        let (lost_tx, lost_rx) = watch::channel(false);
        let me = self.clone();
        let handle = tokio::spawn(async move {
            let mut last_renewal = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(me.renew_every).await;
                // A request that hangs must not outlive the lease unnoticed.
                let attempt = tokio::time::timeout(me.renew_every, me.try_acquire_or_renew());
                let result = match attempt.await {
                    Ok(result) => result,
                    Err(_) => Err(kube::Error::Service("renewing the lease timed out".into())),
                };
                match result {
                    Ok(true) => last_renewal = tokio::time::Instant::now(),
                    Ok(false) => {
                        tracing::error!(lease = %me.name, "leader lease taken by another replica");
                        let _ = lost_tx.send(true);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, lease = %me.name, "renewing the leader lease");
                        if last_renewal.elapsed() >= me.duration {
                            let _ = lost_tx.send(true);
                            return;
                        }
                    }
                }
            }
        });
        (lost_rx, handle)
    }

    /// Gives the lease up (on a clean shutdown) so a standby takes over at once instead
    /// of after the lease duration. Does nothing when another replica holds it.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        self.api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
}
