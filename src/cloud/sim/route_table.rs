//! Route tables: `CreateRouteTable` (client token), then one `CreateRoute`/`ReplaceRoute`/
//! `DeleteRoute` per differing destination and one `AssociateRouteTable`/
//! `ReplaceRouteTableAssociation`/`DisassociateRouteTable` per differing subnet. Delete
//! disassociates first; the VPC's main table cannot be deleted.

use std::collections::BTreeMap;

use super::SimCloud;
use super::api::{Result, dependency, missing, not_found, ok_if_missing, sync_tags, terminal};
use super::cidr::Cidr;
use super::nat::same_request;
use super::world::World;
use crate::cloud::{
    Desired, InternetGatewaySpec, Kind, Observed, Route, RouteTableSpec, SubnetSpec,
};

pub(crate) async fn create(sim: &SimCloud, d: &Desired, spec: &RouteTableSpec) -> Result<Observed> {
    let vpc_id = &spec.vpc_id;
    let id = sim
        .call("ec2", "CreateRouteTable", |w, now| {
            let op = "CreateRouteTable";
            if let Some(existing) = w.by_token(Kind::RouteTable, &d.client_token) {
                return same_request(op, existing.token.as_ref(), &d.spec)
                    .map(|_| existing.id.clone());
            }
            if w.get(Kind::Vpc, vpc_id).is_none() {
                return Err(not_found(
                    op,
                    "InvalidVpcID.NotFound",
                    format!("The vpc ID '{vpc_id}' does not exist"),
                ));
            }
            let id = w.new_id("rtb-");
            let empty = RouteTableSpec {
                vpc_id: vpc_id.clone(),
                routes: vec![],
                subnet_ids: vec![],
            };
            w.insert(Kind::RouteTable, &id, empty.into(), d.tags.clone(), now);
            if let Some(r) = w.get_mut(Kind::RouteTable, &id) {
                r.token = Some((d.client_token.clone(), d.spec.clone()));
            }
            Ok(id)
        })
        .await?;
    // A replayed client token returns the existing table, possibly already reconciled.
    let created = sim
        .world()
        .spec::<RouteTableSpec>(&id)
        .cloned()
        .ok_or_else(|| missing(Kind::RouteTable, &id))?;
    reconcile(sim, &id, spec, &created).await?;
    sim.snapshot(Kind::RouteTable, &id)
}

pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &RouteTableSpec,
    have: &RouteTableSpec,
) -> Result<Observed> {
    d.spec.check_immutable("CreateRouteTable", &o.spec)?;
    reconcile(sim, &o.id, want, have).await?;
    sync_tags(sim, Kind::RouteTable, &o.id, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::RouteTable, &o.id)
}

async fn reconcile(
    sim: &SimCloud,
    id: &str,
    want: &RouteTableSpec,
    have: &RouteTableSpec,
) -> Result<()> {
    let by_dest = |routes: &[Route]| -> BTreeMap<String, String> {
        routes
            .iter()
            .filter(|r| r.target != "local")
            .map(|r| (r.destination.clone(), r.target.clone()))
            .collect()
    };
    let (want_routes, have_routes) = (by_dest(&want.routes), by_dest(&have.routes));
    for (dest, target) in &want_routes {
        let op = match have_routes.get(dest) {
            None => "CreateRoute",
            Some(current) if current != target => "ReplaceRoute",
            Some(_) => continue,
        };
        sim.call("ec2", op, |w, _| set_route(w, op, id, dest, Some(target)))
            .await?;
    }
    for dest in have_routes.keys().filter(|d| !want_routes.contains_key(*d)) {
        sim.call("ec2", "DeleteRoute", |w, _| {
            set_route(w, "DeleteRoute", id, dest, None)
        })
        .await?;
    }
    let (want_subnets, have_subnets) = (&want.subnet_ids, &have.subnet_ids);
    for subnet in want_subnets.iter().filter(|s| !have_subnets.contains(s)) {
        let elsewhere = sim
            .world()
            .specs::<RouteTableSpec>()
            .any(|(r, table)| r.id != id && table.subnet_ids.contains(subnet));
        let op = if elsewhere {
            "ReplaceRouteTableAssociation"
        } else {
            "AssociateRouteTable"
        };
        sim.call("ec2", op, |w, _| associate(w, op, id, subnet))
            .await?;
    }
    for subnet in have_subnets.iter().filter(|s| !want_subnets.contains(s)) {
        sim.call("ec2", "DisassociateRouteTable", |w, _| {
            disassociate(w, id, subnet)
        })
        .await?;
    }
    Ok(())
}

fn table<'a>(w: &'a mut World, op: &str, id: &str) -> Result<&'a mut RouteTableSpec> {
    w.spec_mut::<RouteTableSpec>(id).ok_or_else(|| {
        not_found(
            op,
            "InvalidRouteTableID.NotFound",
            format!("The routeTable ID '{id}' does not exist"),
        )
    })
}

/// The route's target must exist; an internet gateway must be attached to the table's VPC.
fn check_target(w: &World, op: &str, vpc: &str, table: &str, target: &str) -> Result<()> {
    if target.starts_with("nat-") {
        return match w.get(Kind::NatGateway, target) {
            Some(_) => Ok(()),
            None => Err(not_found(
                op,
                "InvalidNatGatewayID.NotFound",
                format!("The natGateway ID '{target}' does not exist"),
            )),
        };
    }
    match w.spec::<InternetGatewaySpec>(target) {
        Some(igw) if igw.vpc_id == vpc => Ok(()),
        Some(_) => Err(terminal(
            op,
            "InvalidParameterValue",
            format!(
                "route table {table} and network gateway {target} belong to different networks"
            ),
        )),
        None => Err(not_found(
            op,
            "InvalidGatewayID.NotFound",
            format!("The gateway ID '{target}' does not exist"),
        )),
    }
}

/// Create (`target` set, destination new), replace (set, present) or delete (None).
fn set_route(w: &mut World, op: &str, id: &str, dest: &str, target: Option<&String>) -> Result<()> {
    let vpc = table(w, op, id)?.vpc_id.clone();
    if let Some(target) = target {
        if !dest.contains(':') && Cidr::parse(dest).is_none() {
            return Err(terminal(
                op,
                "InvalidParameterValue",
                format!("Value ({dest}) for parameter destinationCidrBlock is invalid"),
            ));
        }
        check_target(w, op, &vpc, id, target)?;
    }
    let routes = &mut table(w, op, id)?.routes;
    let present = routes.iter().position(|r| r.destination == dest);
    match (op, present, target) {
        ("CreateRoute", Some(_), _) => {
            return Err(terminal(
                op,
                "RouteAlreadyExists",
                format!("The route identified by {dest} already exists."),
            ));
        }
        ("CreateRoute", None, Some(t)) => routes.push(Route {
            destination: dest.into(),
            target: t.clone(),
        }),
        (_, Some(i), Some(t)) => routes[i].target = t.clone(),
        (_, Some(i), None) => {
            routes.remove(i);
        }
        (_, None, _) => {
            return Err(not_found(
                op,
                "InvalidRoute.NotFound",
                format!("no route with destination-cidr-block {dest} in {id}"),
            ));
        }
    }
    routes.sort();
    Ok(())
}

fn associate(w: &mut World, op: &str, id: &str, subnet: &str) -> Result<()> {
    let vpc = table(w, op, id)?.vpc_id.clone();
    match w.spec::<SubnetSpec>(subnet).map(|s| &s.vpc_id) {
        None => {
            return Err(not_found(
                op,
                "InvalidSubnetID.NotFound",
                format!("The subnet ID '{subnet}' does not exist"),
            ));
        }
        Some(v) if *v != vpc => {
            return Err(terminal(
                op,
                "InvalidParameterValue",
                format!("route table {id} and subnet {subnet} belong to different networks"),
            ));
        }
        Some(_) => {}
    }
    forget_subnet(w, subnet);
    let subnets = &mut table(w, op, id)?.subnet_ids;
    subnets.push(subnet.to_string());
    subnets.sort();
    Ok(())
}

fn disassociate(w: &mut World, id: &str, subnet: &str) -> Result<()> {
    let op = "DisassociateRouteTable";
    let subnets = &mut table(w, op, id)?.subnet_ids;
    let before = subnets.len();
    subnets.retain(|s| s != subnet);
    if subnets.len() == before {
        return Err(not_found(
            op,
            "InvalidAssociationID.NotFound",
            format!("{subnet} is not associated with {id}"),
        ));
    }
    Ok(())
}

/// Drops every explicit association of `subnet` (the subnet is gone or moves tables).
pub(crate) fn forget_subnet(w: &mut World, subnet: &str) {
    let tables: Vec<String> = w
        .specs::<RouteTableSpec>()
        .filter(|(_, table)| table.subnet_ids.iter().any(|s| s == subnet))
        .map(|(r, _)| r.id.clone())
        .collect();
    for id in tables {
        if let Some(table) = w.spec_mut::<RouteTableSpec>(&id) {
            table.subnet_ids.retain(|s| s != subnet);
        }
    }
}

pub(crate) async fn delete(sim: &SimCloud, id: &str) -> Result<()> {
    let result = async {
        let op = "DescribeRouteTables";
        let subnets = sim
            .call("ec2", op, |w, _| {
                table(w, op, id).map(|t| t.subnet_ids.clone())
            })
            .await?;
        for subnet in &subnets {
            sim.call("ec2", "DisassociateRouteTable", |w, _| {
                disassociate(w, id, subnet)
            })
            .await?;
        }
        sim.call("ec2", "DeleteRouteTable", |w, _| {
            let op = "DeleteRouteTable";
            let associated = !table(w, op, id)?.subnet_ids.is_empty();
            let main = w
                .get(Kind::RouteTable, id)
                .is_some_and(|r| r.attributes.contains_key("main"));
            if main || associated {
                return Err(dependency(
                    op,
                    format!("The routeTable '{id}' has dependencies and cannot be deleted."),
                ));
            }
            w.remove(id);
            Ok(())
        })
        .await
    };
    ok_if_missing(result.await)
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::cloud::{CloudError, Kind, Provider};

    #[tokio::test]
    async fn create_adds_routes_and_associations_and_token_replays_without_new_calls() {
        let sim = sim();
        let net = network(&sim).await;
        let spec = table_spec(&net.vpc, vec![route("0.0.0.0/0", &net.igw)], &[&net.public]);
        sim.reset_calls();
        let rt = make(&sim, "rt", spec.clone()).await;
        assert!(rt.id.starts_with("rtb-") && rt.id.len() == 21);
        assert_eq!(rt.spec, spec);
        assert_eq!(
            ops(&sim),
            vec!["AssociateRouteTable", "CreateRoute", "CreateRouteTable"]
        );
        sim.reset_calls();
        let again = sim.create(&desired("rt", spec)).await.unwrap();
        assert_eq!(
            (again.id, ops(&sim)),
            (rt.id, vec!["CreateRouteTable".to_string()]),
            "same table, nothing redone"
        );
    }

    #[tokio::test]
    async fn associating_a_subnet_held_by_another_table_replaces_the_association() {
        let sim = sim();
        let net = network(&sim).await;
        let a = make(&sim, "a", table_spec(&net.vpc, vec![], &[&net.private])).await;
        sim.reset_calls();
        let b = make(&sim, "b", table_spec(&net.vpc, vec![], &[&net.private])).await;
        assert_eq!(count(&sim, "ReplaceRouteTableAssociation"), 1);
        let a_now = observe_id(&sim, Kind::RouteTable, &a.id).await.unwrap();
        assert_eq!(
            a_now.spec,
            table_spec(&net.vpc, vec![], &[]),
            "the subnet moved to {}",
            b.id
        );
    }

    #[tokio::test]
    async fn route_targets_are_checked() {
        let sim = sim();
        let net = network(&sim).await;
        let other = make(&sim, "vpc2", vpc_spec()).await;
        let err = sim
            .create(&desired(
                "x",
                table_spec(&other.id, vec![route("0.0.0.0/0", &net.igw)], &[]),
            ))
            .await;
        assert_eq!(
            code(&err.unwrap_err()),
            "InvalidParameterValue",
            "IGW attached to another VPC"
        );
        let err = sim
            .create(&desired(
                "y",
                table_spec(
                    &net.vpc,
                    vec![route("0.0.0.0/0", "nat-00000000000000000")],
                    &[],
                ),
            ))
            .await;
        assert!(
            matches!(err, Err(CloudError::NotFound { .. })),
            "missing NAT"
        );
        let err = sim
            .create(&desired(
                "z",
                table_spec(&net.vpc, vec![route("nowhere", &net.igw)], &[]),
            ))
            .await;
        assert_eq!(
            code(&err.unwrap_err()),
            "InvalidParameterValue",
            "bad destination"
        );
    }

    #[tokio::test]
    async fn associations_never_block_deletes_but_the_main_table_cannot_go() {
        let sim = sim();
        let net = network(&sim).await;
        let rt = make(
            &sim,
            "rt",
            table_spec(&net.vpc, vec![], &[&net.public, &net.private]),
        )
        .await;
        sim.delete(Kind::Subnet, &net.public)
            .await
            .expect("AWS deletes a subnet with an association");
        let left = observe_id(&sim, Kind::RouteTable, &rt.id).await.unwrap();
        assert_eq!(
            left.spec,
            table_spec(&net.vpc, vec![], &[&net.private]),
            "its association went with it"
        );
        sim.reset_calls();
        sim.delete(Kind::RouteTable, &rt.id).await.unwrap();
        assert_eq!(
            ops(&sim),
            vec![
                "DeleteRouteTable",
                "DescribeRouteTables",
                "DisassociateRouteTable"
            ]
        );
        let main = sim
            .resources()
            .into_iter()
            .find(|(k, o)| *k == Kind::RouteTable && o.attributes.contains_key("main"));
        let err = sim
            .delete(Kind::RouteTable, &main.unwrap().1.id)
            .await
            .unwrap_err();
        assert!(
            matches!(err, CloudError::DependencyViolation { .. }),
            "{err}"
        );
    }
}
