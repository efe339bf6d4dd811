//! Read side: the batched Describe* behind `observe`, and the tag search behind `owned`.
//! Neither changes anything; both honour the consistency window.

use std::time::Instant;

use super::SimCloud;
use super::api::Result;
use super::world::{Record, World};
use crate::cloud::{Idempotency, Kind, KindSpec, KmsKeySpec, Lookup, Observed, Owner};

pub(crate) async fn observe(
    sim: &SimCloud,
    kind: Kind,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>> {
    let owner = owner.to_string();
    sim.call(kind.service(), kind.info().describe, |w, now| {
        Ok(lookups
            .iter()
            .map(|lookup| find(w, kind, &owner, lookup, now).map(Record::observed))
            .collect())
    })
    .await
}

/// By recorded id; else, for a kind AWS creates itself (`Idempotency::Adopted`: the
/// default security group), by the desired parent (its VPC); else the oldest resource
/// tagged with the owner and the lookup's node.
fn find<'a>(
    w: &'a World,
    kind: Kind,
    owner: &str,
    lookup: &Lookup,
    now: Instant,
) -> Option<&'a Record> {
    let seen = |r: &&Record| w.visible(r, now);
    if let Some(found) = lookup
        .recorded_id
        .as_deref()
        .and_then(|id| w.get(kind, id))
        .filter(seen)
    {
        return Some(found);
    }
    if kind.info().idempotency == Idempotency::Adopted
        && let Some(parent) = kind.info().parent
        && let Some(want) = lookup.desired.as_ref().and_then(|d| d.field(parent.field))
    {
        return w
            .of_kind(kind)
            .filter(seen)
            .find(|r| r.parent().is_some_and(|(_, id)| id == want));
    }
    w.of_kind(kind)
        .filter(seen)
        .filter(|r| r.is_node(owner, &lookup.node))
        .min_by_key(|r| r.seq)
}

/// Every resource tagged with the owner that still exists, oldest first. A KMS key
/// scheduled for deletion no longer counts. One Resource Groups Tagging API call.
pub(crate) async fn owned(sim: &SimCloud, owner: &Owner) -> Result<Vec<crate::cloud::Owned>> {
    let owner = owner.to_string();
    sim.call("tagging", "GetResources", |w, now| {
        let mut found: Vec<&Record> = w
            .all()
            .filter(|r| r.owned_by(&owner) && w.visible(r, now))
            .filter(|r| KmsKeySpec::of(&r.spec).is_none_or(|key| !key.pending_deletion))
            .collect();
        found.sort_by_key(|r| r.seq);
        Ok(found
            .into_iter()
            .map(|r| crate::cloud::Owned {
                kind: r.kind,
                id: r.id.clone(),
                node: r
                    .tags
                    .get(crate::cloud::TAG_NODE)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect())
    })
    .await
}
