//! What a person at the AWS console (or a test) does behind the operator's back: edit a
//! resource, delete it, retag it, and the knobs for faults and consistency. None of it is
//! counted as an operator call, and none of it waits.

use std::time::Duration;

use super::SimCloud;
use super::api::{Result, missing, terminal};
use crate::cloud::{Kind, KindSpec, Observed, SecurityGroupSpec, SgRule, Spec};

impl SimCloud {
    /// Changes a resource's spec in place, as a console edit would (no validation beyond
    /// keeping the kind). Observe sees the result at once.
    pub fn edit(&self, kind: Kind, id: &str, f: impl FnOnce(&mut Spec)) -> Result<()> {
        let mut world = self.world();
        let record = world.get_mut(kind, id).ok_or_else(|| missing(kind, id))?;
        let mut spec = record.spec.clone();
        f(&mut spec);
        if spec.kind() != kind {
            return Err(terminal(
                "edit",
                "InvalidParameterValue",
                format!(
                    "an edit cannot turn a {} into a {}",
                    kind.type_name(),
                    spec.kind().type_name()
                ),
            ));
        }
        record.spec = spec;
        Ok(())
    }

    /// Adds an ingress rule to a security group, as a console user would (the demo's and
    /// the tests' favourite drift: SSH opened to the world).
    pub fn authorize_ingress(&self, security_group: &str, rule: SgRule) -> Result<()> {
        self.edit(Kind::SecurityGroup, security_group, |spec| {
            if let Some(group) = SecurityGroupSpec::of_mut(spec) {
                group.ingress.push(rule);
            }
        })
    }

    /// The ingress rules of a security group as they are now (None: no such group).
    pub fn ingress_rules(&self, security_group: &str) -> Option<Vec<SgRule>> {
        let world = self.world();
        world
            .spec::<SecurityGroupSpec>(security_group)
            .map(|group| group.ingress.clone())
    }

    /// Deletes a resource at once, whatever its state and dependents (a NAT gateway goes
    /// straight to gone, with no `deleting` phase). What AWS deletes with it goes too: a
    /// VPC's default security group, main route table and flow logs; a subnet's route
    /// table associations.
    pub fn remove(&self, kind: Kind, id: &str) -> Result<()> {
        let mut world = self.world();
        if world.get(kind, id).is_none() {
            return Err(missing(kind, id));
        }
        world.remove(id);
        match kind {
            Kind::Vpc => {
                let doomed: Vec<String> = world
                    .all()
                    .filter(|r| {
                        matches!(
                            r.kind,
                            Kind::DefaultSecurityGroup | Kind::RouteTable | Kind::FlowLog
                        )
                    })
                    .filter(|r| {
                        r.vpc_id().as_deref() == Some(id)
                            && (r.kind != Kind::RouteTable || r.attributes.contains_key("main"))
                    })
                    .map(|r| r.id.clone())
                    .collect();
                for other in doomed {
                    world.remove(&other);
                }
            }
            Kind::Subnet => super::route_table::forget_subnet(&mut world, id),
            _ => {}
        }
        Ok(())
    }

    /// Deploys `source` to a Lambda function by hand (console upload, `aws lambda
    /// update-function-code`): its `CodeSha256` changes, its `hipaa.dev/code` tags do
    /// not, so the operator observes `unknown (sha256 …)`.
    pub fn deploy_function_code(&self, function: &str, source: &str) -> Result<()> {
        let mut world = self.world();
        let record = world
            .get_mut(Kind::LambdaFunction, function)
            .ok_or_else(|| missing(Kind::LambdaFunction, function))?;
        record.attributes.insert(
            "codeSha256".into(),
            super::lambda_function::code_sha256(source),
        );
        Ok(())
    }

    pub fn set_tag(&self, kind: Kind, id: &str, key: &str, value: &str) -> Result<()> {
        let mut world = self.world();
        let record = world.get_mut(kind, id).ok_or_else(|| missing(kind, id))?;
        record.tags.insert(key.to_string(), value.to_string());
        Ok(())
    }

    pub fn remove_tag(&self, kind: Kind, id: &str, key: &str) -> Result<()> {
        let mut world = self.world();
        let record = world.get_mut(kind, id).ok_or_else(|| missing(kind, id))?;
        record.tags.remove(key);
        Ok(())
    }

    /// Probabilities that each later call fails first with a throttle / a 5xx error.
    pub fn set_faults(&self, throttle_rate: f64, server_error_rate: f64) {
        let mut world = self.world();
        world.throttle_rate = throttle_rate;
        world.server_error_rate = server_error_rate;
    }

    /// Makes every later call of `operation` (e.g. `CreateVpc`) fail with AccessDenied, as
    /// a missing IAM permission does, until [`allow`](Self::allow)ed.
    pub fn deny(&self, operation: &str) {
        self.world().denied.insert(operation.to_string());
    }

    /// Undoes [`deny`](Self::deny).
    pub fn allow(&self, operation: &str) {
        self.world().denied.remove(operation);
    }

    /// How long (real time) resources created from now on stay invisible to observe and
    /// owned; resources already created are judged by the new window too.
    pub fn set_consistency_window(&self, window: Duration) {
        self.world().consistency_window = window;
    }

    /// Everything that exists (any kind, any owner, the VPCs' default security groups and
    /// main route tables included), ignoring the consistency window, oldest first.
    pub fn resources(&self) -> Vec<(Kind, Observed)> {
        let world = self.world();
        let mut all: Vec<_> = world.all().collect();
        all.sort_by_key(|r| r.seq);
        all.into_iter().map(|r| (r.kind, r.observed())).collect()
    }
}
