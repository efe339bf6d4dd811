//! Route tables: `CreateRouteTable` (client token, tags), then one `CreateRoute` per route
//! and one `AssociateRouteTable` per subnet (`ReplaceRouteTableAssociation` when the subnet
//! is explicitly associated with another table). Observe is one paginated
//! `DescribeRouteTables` by the owner tag (plus one by `route-table-id` for recorded ids the
//! tag search missed); the `local` route and the main association are left out. Delete
//! disassociates every subnet, then `DeleteRouteTable`. moto ignores `ClientToken` on
//! `CreateRouteTable` (a retried create makes a second table; AWS returns the first).

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, ResourceType, RouteTable};

use super::paginate;
use super::{
    AwsCloud, ensure_ec2_tags, from_ec2_tags, match_lookups, owner_filter, tag_specification,
};
use crate::cloud::{
    CloudError, Desired, Kind, Lookup, Observed, Owned, Owner, Route, RouteTableSpec, State,
    TAG_NODE,
};

/// Every route table matching `filters`, all pages.
async fn describe(cloud: &AwsCloud, filters: Vec<Filter>) -> Result<Vec<RouteTable>, CloudError> {
    paginate(|token| {
        let call = cloud
            .ec2
            .describe_route_tables()
            .set_filters(Some(filters.clone()))
            .set_next_token(token);
        async move {
            let page = cloud.done("ec2", "DescribeRouteTables", call.send().await)?;
            Ok((
                page.route_tables().to_vec(),
                page.next_token().map(String::from),
            ))
        }
    })
    .await
}

fn id_filter(ids: &[String]) -> Filter {
    Filter::builder()
        .name("route-table-id")
        .set_values(Some(ids.to_vec()))
        .build()
}

fn route_target(route: &aws_sdk_ec2::types::Route) -> Option<String> {
    route
        .nat_gateway_id()
        .or(route.gateway_id())
        .or(route.transit_gateway_id())
        .or(route.vpc_peering_connection_id())
        .or(route.network_interface_id())
        .or(route.instance_id())
        .map(String::from)
}

/// The table as the spec describes it: routes but `local`, explicit associations.
fn spec_of(table: &RouteTable) -> RouteTableSpec {
    let mut routes: Vec<Route> = table
        .routes()
        .iter()
        .filter_map(|r| {
            let destination = r
                .destination_cidr_block()
                .or(r.destination_ipv6_cidr_block())?;
            let target = route_target(r)?;
            (target != "local").then(|| Route {
                destination: destination.to_string(),
                target,
            })
        })
        .collect();
    routes.sort();
    let mut subnet_ids: Vec<String> = table
        .associations()
        .iter()
        .filter(|a| !a.main().unwrap_or(false))
        .filter_map(|a| a.subnet_id().map(String::from))
        .collect();
    subnet_ids.sort();
    RouteTableSpec {
        vpc_id: table.vpc_id().unwrap_or_default().to_string(),
        routes,
        subnet_ids,
    }
}

fn to_observed(table: &RouteTable) -> Observed {
    Observed {
        id: table.route_table_id().unwrap_or_default().to_string(),
        arn: None,
        state: State::Available,
        spec: spec_of(table).into(),
        tags: from_ec2_tags(table.tags()),
        attributes: BTreeMap::new(),
    }
}

fn is_main(table: &RouteTable) -> bool {
    table
        .associations()
        .iter()
        .any(|a| a.main().unwrap_or(false))
}

pub(crate) async fn observe(
    cloud: &AwsCloud,
    owner: &Owner,
    lookups: &[Lookup],
) -> Result<Vec<Option<Observed>>, CloudError> {
    let mut tables = describe(cloud, vec![owner_filter(owner)]).await?;
    let missing: Vec<String> = lookups
        .iter()
        .filter_map(|l| l.recorded_id.clone())
        .filter(|id| {
            !tables
                .iter()
                .any(|t| t.route_table_id() == Some(id.as_str()))
        })
        .collect();
    if !missing.is_empty() {
        // A recorded table that lost its tags: a second, filter-based call (no error for ids
        // that no longer exist, unlike `RouteTableIds`).
        tables.extend(describe(cloud, vec![id_filter(&missing)]).await?);
    }
    let found = tables
        .iter()
        .filter(|t| !is_main(t))
        .map(to_observed)
        .collect();
    Ok(match_lookups(lookups, found))
}

async fn read(cloud: &AwsCloud, id: &str) -> Result<RouteTable, CloudError> {
    describe(cloud, vec![id_filter(&[id.to_string()])])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| CloudError::NotFound {
            operation: "DescribeRouteTables".into(),
            message: format!(
                "InvalidRouteTableID.NotFound: The routeTable ID '{id}' does not exist"
            ),
        })
}

pub(crate) async fn create(
    cloud: &AwsCloud,
    desired: &Desired,
    spec: &RouteTableSpec,
) -> Result<Observed, CloudError> {
    let result = cloud
        .ec2
        .create_route_table()
        .vpc_id(&spec.vpc_id)
        .client_token(&desired.client_token)
        .tag_specifications(tag_specification(ResourceType::RouteTable, &desired.tags))
        .send()
        .await;
    let output = cloud.done("ec2", "CreateRouteTable", result)?;
    let table = output
        .route_table()
        .cloned()
        .ok_or_else(|| CloudError::Server {
            operation: "CreateRouteTable".into(),
            message: "no route table in the response".into(),
        })?;
    // A replayed client token returns the existing table, possibly already reconciled.
    let id = table.route_table_id().unwrap_or_default().to_string();
    reconcile(cloud, &id, spec, &spec_of(&table), &table).await?;
    Ok(to_observed(&read(cloud, &id).await?))
}

/// Reconciles from the table as it is now (read again: associations move between tables).
pub(crate) async fn update(
    cloud: &AwsCloud,
    desired: &Desired,
    observed: &Observed,
    want: &RouteTableSpec,
) -> Result<Observed, CloudError> {
    desired
        .spec
        .check_immutable("CreateRouteTable", &observed.spec)?;
    let table = read(cloud, &observed.id).await?;
    reconcile(cloud, &observed.id, want, &spec_of(&table), &table).await?;
    ensure_ec2_tags(cloud, &observed.id, &desired.tags, &observed.tags).await?;
    Ok(to_observed(&read(cloud, &observed.id).await?))
}

async fn set_route(
    cloud: &AwsCloud,
    op: &str,
    id: &str,
    dest: &str,
    target: &str,
) -> Result<(), CloudError> {
    let v6 = dest.contains(':');
    let nat = target.starts_with("nat-");
    if op == "CreateRoute" {
        let mut call = cloud.ec2.create_route().route_table_id(id);
        call = if v6 {
            call.destination_ipv6_cidr_block(dest)
        } else {
            call.destination_cidr_block(dest)
        };
        call = if nat {
            call.nat_gateway_id(target)
        } else {
            call.gateway_id(target)
        };
        cloud
            .done("ec2", "CreateRoute", call.send().await)
            .map(|_| ())
    } else {
        let mut call = cloud.ec2.replace_route().route_table_id(id);
        call = if v6 {
            call.destination_ipv6_cidr_block(dest)
        } else {
            call.destination_cidr_block(dest)
        };
        call = if nat {
            call.nat_gateway_id(target)
        } else {
            call.gateway_id(target)
        };
        cloud
            .done("ec2", "ReplaceRoute", call.send().await)
            .map(|_| ())
    }
}

async fn reconcile(
    cloud: &AwsCloud,
    id: &str,
    want: &RouteTableSpec,
    have: &RouteTableSpec,
    table: &RouteTable,
) -> Result<(), CloudError> {
    let (want_subnets, have_subnets) = (&want.subnet_ids, &have.subnet_ids);
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
        set_route(cloud, op, id, dest, target).await?;
    }
    for dest in have_routes.keys().filter(|d| !want_routes.contains_key(*d)) {
        let call = cloud.ec2.delete_route().route_table_id(id);
        let call = if dest.contains(':') {
            call.destination_ipv6_cidr_block(dest)
        } else {
            call.destination_cidr_block(dest)
        };
        cloud.done("ec2", "DeleteRoute", call.send().await)?;
    }
    for subnet in want_subnets.iter().filter(|s| !have_subnets.contains(s)) {
        associate(cloud, id, subnet).await?;
    }
    for subnet in have_subnets.iter().filter(|s| !want_subnets.contains(s)) {
        let association = table
            .associations()
            .iter()
            .find(|a| a.subnet_id() == Some(subnet.as_str()) && !a.main().unwrap_or(false))
            .and_then(|a| a.route_table_association_id());
        if let Some(association) = association {
            let result = cloud
                .ec2
                .disassociate_route_table()
                .association_id(association)
                .send()
                .await;
            cloud.done("ec2", "DisassociateRouteTable", result)?;
        }
    }
    Ok(())
}

/// Associates `subnet`; when another table holds it explicitly, replaces that association.
async fn associate(cloud: &AwsCloud, id: &str, subnet: &str) -> Result<(), CloudError> {
    let filter = Filter::builder()
        .name("association.subnet-id")
        .values(subnet)
        .build();
    let holder = describe(cloud, vec![filter]).await?;
    let existing = holder
        .iter()
        .flat_map(|t| t.associations())
        .find(|a| a.subnet_id() == Some(subnet) && !a.main().unwrap_or(false));
    match existing.and_then(|a| a.route_table_association_id()) {
        Some(association) => {
            let result = cloud
                .ec2
                .replace_route_table_association()
                .association_id(association)
                .route_table_id(id)
                .send()
                .await;
            cloud
                .done("ec2", "ReplaceRouteTableAssociation", result)
                .map(|_| ())
        }
        None => {
            let result = cloud
                .ec2
                .associate_route_table()
                .route_table_id(id)
                .subnet_id(subnet)
                .send()
                .await;
            cloud.done("ec2", "AssociateRouteTable", result).map(|_| ())
        }
    }
}

pub(crate) async fn delete(cloud: &AwsCloud, id: &str) -> Result<(), CloudError> {
    let table = read(cloud, id).await?;
    for association in table
        .associations()
        .iter()
        .filter(|a| !a.main().unwrap_or(false))
    {
        if let Some(association) = association.route_table_association_id() {
            let result = cloud
                .ec2
                .disassociate_route_table()
                .association_id(association)
                .send()
                .await;
            match cloud.done("ec2", "DisassociateRouteTable", result) {
                Ok(_) | Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let result = cloud
        .ec2
        .delete_route_table()
        .route_table_id(id)
        .send()
        .await;
    cloud.done("ec2", "DeleteRouteTable", result).map(|_| ())
}

pub(crate) async fn owned(cloud: &AwsCloud, owner: &Owner) -> Result<Vec<Owned>, CloudError> {
    Ok(describe(cloud, vec![owner_filter(owner)])
        .await?
        .iter()
        .filter(|t| !is_main(t))
        .map(|t| Owned {
            kind: Kind::RouteTable,
            id: t.route_table_id().unwrap_or_default().to_string(),
            node: from_ec2_tags(t.tags()).remove(TAG_NODE).unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    //! Against moto: `.ci/with-moto cargo test --lib cloud::aws`.

    use std::collections::BTreeMap;

    use super::super::AwsCloud;
    use crate::cloud::{
        Desired, Kind, Lookup, Observed, Owner, Provider, Route, RouteTableSpec, Spec,
        ownership_tags,
    };

    pub(crate) async fn cloud() -> AwsCloud {
        let endpoint = std::env::var("MOTO_ENDPOINT").expect("MOTO_ENDPOINT");
        let config = super::super::sdk_config("us-east-1", Some(&endpoint)).await;
        AwsCloud::new(&config, "us-east-1")
    }

    /// A fresh owner per test: moto keeps its state between tests.
    pub(crate) fn owner(test: &str) -> Owner {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Owner {
            kind: "HipaaNetwork".into(),
            namespace: "test".into(),
            name: format!("{test}-{nanos}"),
        }
    }

    pub(crate) fn desired(owner: &Owner, node: &str, spec: Spec) -> Desired {
        Desired {
            node: node.into(),
            spec,
            tags: ownership_tags(owner, node, &BTreeMap::new()),
            client_token: format!("{owner}/{node}").replace('/', "-"),
        }
    }

    pub(crate) async fn by_id(
        cloud: &AwsCloud,
        owner: &Owner,
        kind: Kind,
        id: &str,
    ) -> Option<Observed> {
        let lookup = Lookup {
            node: "nobody".into(),
            recorded_id: Some(id.into()),
            desired: None,
        };
        cloud
            .observe(kind, owner, &[lookup])
            .await
            .unwrap()
            .remove(0)
    }

    pub(crate) async fn by_tag(
        cloud: &AwsCloud,
        owner: &Owner,
        kind: Kind,
        node: &str,
    ) -> Option<Observed> {
        let lookup = Lookup {
            node: node.into(),
            recorded_id: None,
            desired: None,
        };
        cloud
            .observe(kind, owner, &[lookup])
            .await
            .unwrap()
            .remove(0)
    }

    /// A VPC with two subnets and an attached internet gateway.
    pub(crate) async fn network(cloud: &AwsCloud) -> (String, String, String, String) {
        let vpc = cloud
            .ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap();
        let vpc = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
        let mut subnets = Vec::new();
        for cidr in ["10.0.1.0/24", "10.0.2.0/24"] {
            let s = cloud
                .ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone("us-east-1a")
                .send()
                .await
                .unwrap();
            subnets.push(s.subnet().unwrap().subnet_id().unwrap().to_string());
        }
        let igw = cloud.ec2.create_internet_gateway().send().await.unwrap();
        let igw = igw
            .internet_gateway()
            .unwrap()
            .internet_gateway_id()
            .unwrap()
            .to_string();
        cloud
            .ec2
            .attach_internet_gateway()
            .vpc_id(&vpc)
            .internet_gateway_id(&igw)
            .send()
            .await
            .unwrap();
        (vpc, subnets[0].clone(), subnets[1].clone(), igw)
    }

    #[tokio::test]
    async fn route_table_against_moto() {
        let cloud = cloud().await;
        let owner = owner("rt");
        let (vpc, a, b, igw) = network(&cloud).await;
        let route = Route {
            destination: "0.0.0.0/0".into(),
            target: igw.clone(),
        };
        let spec = Spec::RouteTable(RouteTableSpec {
            vpc_id: vpc.clone(),
            routes: vec![route],
            subnet_ids: vec![a.clone()],
        });
        let d = desired(&owner, "rt", spec.clone());
        let created = cloud.create(&d).await.unwrap();
        assert_eq!(created.spec, spec);
        assert_eq!(created.tags, d.tags);
        assert_eq!(
            by_id(&cloud, &owner, Kind::RouteTable, &created.id)
                .await
                .unwrap()
                .spec,
            spec
        );
        let seen = by_tag(&cloud, &owner, Kind::RouteTable, "rt")
            .await
            .unwrap();
        assert_eq!(seen.id, created.id);
        let owned = cloud.owned(&owner).await.unwrap();
        assert!(
            owned
                .iter()
                .any(|o| o.kind == Kind::RouteTable && o.id == created.id && o.node == "rt"),
            "{owned:?}"
        );
        assert_eq!(
            owned.iter().filter(|o| o.kind == Kind::RouteTable).count(),
            1,
            "main table excluded"
        );

        let want = Spec::RouteTable(RouteTableSpec {
            vpc_id: vpc.clone(),
            routes: vec![],
            subnet_ids: vec![b.clone()],
        });
        let updated = cloud
            .update(&desired(&owner, "rt", want.clone()), &seen)
            .await
            .unwrap();
        assert_eq!(updated.spec, want);
        let wrong = Spec::RouteTable(RouteTableSpec {
            vpc_id: "vpc-other".into(),
            routes: vec![],
            subnet_ids: vec![],
        });
        let err = cloud
            .update(&desired(&owner, "rt", wrong), &updated)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("vpcId"), "{err}");

        let again = cloud.create(&d).await.unwrap();
        if again.id != created.id {
            // moto ignores CreateRouteTable's ClientToken (AWS returns the first table).
            eprintln!("moto: ClientToken ignored by CreateRouteTable");
            cloud.delete(Kind::RouteTable, &again.id).await.unwrap();
        }
        cloud.delete(Kind::RouteTable, &created.id).await.unwrap();
        cloud
            .delete(Kind::RouteTable, &created.id)
            .await
            .expect("missing: success");
        assert!(
            by_id(&cloud, &owner, Kind::RouteTable, &created.id)
                .await
                .is_none()
        );
    }
}
