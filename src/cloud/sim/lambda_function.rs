//! Lambda functions, deployed from a zip in S3. `CreateFunction` (tags, the code's source
//! in `hipaa.dev/code`) -> state `Pending` for 7.5 s ± 2.5 s, then `Active`; the backend
//! then records the `CodeSha256` Lambda answered in `hipaa.dev/code-sha256`
//! (`TagResource`) and reserves concurrency (`PutFunctionConcurrency`): neither is refused
//! while the function is `Pending`. Each `UpdateFunctionConfiguration` and
//! `UpdateFunctionCode` leaves `LastUpdateStatus` `InProgress` for 3.5 s ± 1.5 s (observed
//! `Pending`), and Lambda refuses both while the function is `Pending` or `InProgress`
//! (`ResourceConflictException`, retryable): update then leaves what it could not change
//! for the next pass and reports the function `Pending`.
//!
//! What Lambda checks is checked: the execution role exists and trusts
//! `lambda.amazonaws.com`, the runtime, memory (128–10240 MiB), timeout (1–900 s),
//! architecture, tracing mode, the subnets and groups (existing, one VPC, both or
//! neither), the environment (names, reserved `AWS_` names, 4 KB) and its KMS key, and
//! the account's unreserved concurrency (at least 100 of 1000 stays unreserved).
//!
//! The simulator has no S3: any well-formed `s3://` source deploys, and each distinct
//! source (version included) gets a distinct, deterministic `CodeSha256` (32 bytes in
//! base64, as Lambda prints it; derived from the source text, not from any bytes).
//!
//! A VPC function uses a network interface per subnet, with its groups: they hold the
//! subnets and groups (`DependencyViolation` on their deletes) while the function uses
//! them and, after it is deleted or leaves that subnet/group combination, for 30 min ± 10
//! (AWS takes up to 45). All durations × `time_scale`.

use std::collections::BTreeMap;

use super::SimCloud;
use super::api::{Result, dependency, not_found, ok_if_missing, sync_tags, terminal};
use super::world::{ACCOUNT, LambdaEni, Phase, Record, World};
use crate::cloud::{
    CloudError, DefaultSecurityGroupSpec, Desired, IamRoleSpec, Kind, KindSpec, KmsKeySpec,
    LambdaFunctionSpec, Observed, S3Object, SecurityGroupSpec, SubnetSpec, TAG_CODE,
    TAG_CODE_SHA256,
};

/// Runtimes Lambda accepts for new functions and updates.
const RUNTIMES: &[&str] = &[
    "dotnet8",
    "java11",
    "java17",
    "java21",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "provided.al2",
    "provided.al2023",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "ruby3.3",
    "ruby3.4",
];

/// The account's concurrency quota, and what must stay unreserved.
const ACCOUNT_CONCURRENCY: i32 = 1000;
const MIN_UNRESERVED: i32 = 100;

/// A distinct, deterministic `CodeSha256` for a code source: 32 bytes (four 64-bit
/// FNV-1a hashes with different offsets, each finished with splitmix64), base64.
pub(crate) fn code_sha256(source: &str) -> String {
    let mut bytes = Vec::with_capacity(32);
    for lane in 0u64..4 {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ lane.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in source.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        bytes.extend(h.to_be_bytes());
    }
    base64(&bytes)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn arn(w: &World, name: &str) -> String {
    format!("arn:aws:lambda:{}:{ACCOUNT}:function:{name}", w.region)
}

fn missing_function(w: &World, op: &str, name: &str) -> CloudError {
    not_found(
        op,
        "ResourceNotFoundException",
        format!("Function not found: {}", arn(w, name)),
    )
}

/// The function, unless an update is in progress (or it is still being created).
fn idle<'a>(w: &'a mut World, op: &str, name: &str) -> Result<&'a mut Record> {
    let arn = arn(w, name);
    let record = w.get_mut(Kind::LambdaFunction, name).ok_or_else(|| {
        not_found(
            op,
            "ResourceNotFoundException",
            format!("Function not found: {arn}"),
        )
    })?;
    if let Phase::Pending(_) = record.phase {
        let message = if record.ready_after.is_none() {
            "The operation cannot be performed at this time. The function is currently in the following state: Pending".to_string()
        } else {
            format!(
                "The operation cannot be performed at this time. An update is in progress for resource: {arn}"
            )
        };
        return Err(dependency(
            op,
            format!("ResourceConflictException: {message}"),
        ));
    }
    Ok(record)
}

fn invalid(op: &str, message: impl Into<String>) -> CloudError {
    terminal(op, "InvalidParameterValueException", message)
}

fn validation(op: &str, message: impl Into<String>) -> CloudError {
    terminal(op, "ValidationException", message)
}

/// Everything `UpdateFunctionConfiguration` (and `CreateFunction`) checks of `spec`.
fn check_configuration(w: &World, op: &str, spec: &LambdaFunctionSpec) -> Result<()> {
    let role = w
        .specs::<IamRoleSpec>()
        .find(|(r, _)| r.arn.as_deref() == Some(spec.role_arn.as_str()));
    if role.is_none_or(|(_, role)| role.trusted_service != "lambda.amazonaws.com") {
        return Err(invalid(
            op,
            "The role defined for the function cannot be assumed by Lambda.",
        ));
    }
    if !RUNTIMES.contains(&spec.runtime.as_str()) {
        return Err(validation(
            op,
            format!(
                "Value '{}' at 'runtime' failed to satisfy constraint: Member must satisfy enum value set",
                spec.runtime
            ),
        ));
    }
    if spec.handler.is_empty() || spec.handler.len() > 128 {
        return Err(validation(
            op,
            format!(
                "Value '{}' at 'handler' failed to satisfy constraint",
                spec.handler
            ),
        ));
    }
    if !(128..=10240).contains(&spec.memory_mib) {
        return Err(validation(
            op,
            format!(
                "Value '{}' at 'memorySize' failed to satisfy constraint: Member must have value between 128 and 10240",
                spec.memory_mib
            ),
        ));
    }
    if !(1..=900).contains(&spec.timeout_seconds) {
        return Err(validation(
            op,
            format!(
                "Value '{}' at 'timeout' failed to satisfy constraint: Member must have value between 1 and 900",
                spec.timeout_seconds
            ),
        ));
    }
    if !["Active", "PassThrough"].contains(&spec.tracing_mode.as_str()) {
        return Err(validation(
            op,
            format!(
                "Value '{}' at 'tracingConfig.mode' failed to satisfy constraint: Member must satisfy enum value set: [Active, PassThrough]",
                spec.tracing_mode
            ),
        ));
    }
    check_vpc(w, op, spec)?;
    check_environment(w, op, spec)
}

fn check_vpc(w: &World, op: &str, spec: &LambdaFunctionSpec) -> Result<()> {
    let (subnets, groups) = (&spec.subnet_ids, &spec.security_group_ids);
    if subnets.is_empty() != groups.is_empty() {
        return Err(invalid(
            op,
            "SubnetIds and SecurityGroupIds must both be given, or neither",
        ));
    }
    let mut vpcs = Vec::new();
    for subnet in subnets {
        let vpc = w.spec::<SubnetSpec>(subnet).map(|s| s.vpc_id.clone()).ok_or_else(|| {
            invalid(op, format!("Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. EC2 Error Message: The subnet ID '{subnet}' does not exist"))
        })?;
        vpcs.push(vpc);
    }
    for group in groups {
        let vpc = w
            .spec::<SecurityGroupSpec>(group)
            .map(|g| g.vpc_id.clone())
            .or_else(|| w.spec::<DefaultSecurityGroupSpec>(group).map(|g| g.vpc_id.clone()))
            .ok_or_else(|| {
                invalid(op, format!("Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. EC2 Error Message: The security group '{group}' does not exist"))
            })?;
        vpcs.push(vpc);
    }
    vpcs.dedup();
    if vpcs.len() > 1 {
        return Err(invalid(
            op,
            "The subnets and security groups must all be in one VPC",
        ));
    }
    Ok(())
}

fn check_environment(w: &World, op: &str, spec: &LambdaFunctionSpec) -> Result<()> {
    let name_ok = |name: &str| {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if let Some(bad) = spec.environment.keys().find(|k| !name_ok(k)) {
        return Err(validation(
            op,
            format!(
                "environment variable name '{bad}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+"
            ),
        ));
    }
    let reserved: Vec<&str> = spec
        .environment
        .keys()
        .filter(|k| k.starts_with("AWS_") || k.starts_with("_"))
        .map(String::as_str)
        .collect();
    if !reserved.is_empty() {
        return Err(invalid(
            op,
            format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
                reserved.join(", ")
            ),
        ));
    }
    let size: usize = spec
        .environment
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if size > 4096 {
        return Err(invalid(
            op,
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit.",
        ));
    }
    if !spec.kms_key_arn.is_empty() {
        let usable = w.specs::<KmsKeySpec>().any(|(r, key)| {
            r.arn.as_deref() == Some(spec.kms_key_arn.as_str()) && !key.pending_deletion
        });
        if !usable {
            return Err(invalid(
                op,
                format!(
                    "Lambda was unable to configure access to your environment variables because the KMS key is invalid for CreateGrant. Please check your KMS key settings. KMS Exception: NotFoundException ({})",
                    spec.kms_key_arn
                ),
            ));
        }
    }
    Ok(())
}

fn check_architecture(op: &str, architecture: &str) -> Result<()> {
    if ["x86_64", "arm64"].contains(&architecture) {
        Ok(())
    } else {
        Err(validation(
            op,
            format!(
                "Value '[{architecture}]' at 'architectures' failed to satisfy constraint: Member must satisfy enum value set: [x86_64, arm64]"
            ),
        ))
    }
}

/// Lambda's network interfaces of a function, one per subnet, with its groups.
fn interfaces(spec: &LambdaFunctionSpec) -> Vec<(String, Vec<String>)> {
    let mut groups = spec.security_group_ids.clone();
    groups.sort();
    spec.subnet_ids
        .iter()
        .map(|subnet| (subnet.clone(), groups.clone()))
        .collect()
}

/// Keeps the interfaces `before` had that `after` does not use, for about 30 minutes
/// from `now`.
fn leave_interfaces(
    w: &mut World,
    name: &str,
    before: &[(String, Vec<String>)],
    after: &[(String, Vec<String>)],
    now: std::time::Instant,
) {
    for (subnet, groups) in before.iter().filter(|i| !after.contains(i)) {
        let until = now + w.jittered(1800.0, 600.0);
        w.lambda_enis.push(LambdaEni {
            function: name.to_string(),
            subnet_id: subnet.clone(),
            security_group_ids: groups.clone(),
            until,
        });
    }
}

/// Who holds subnet or security group `id` through a Lambda network interface: a
/// function that uses it, or an interface Lambda keeps after a function left it.
pub(crate) fn network_user(w: &World, id: &str) -> Option<String> {
    let live = w.specs::<LambdaFunctionSpec>().find(|(_, f)| {
        f.subnet_ids.iter().any(|s| s == id) || f.security_group_ids.iter().any(|g| g == id)
    });
    if let Some((record, _)) = live {
        return Some(format!(
            "the network interface of Lambda function {}",
            record.id
        ));
    }
    w.lambda_enis
        .iter()
        .find(|eni| eni.subnet_id == id || eni.security_group_ids.iter().any(|g| g == id))
        .map(|eni| {
            format!(
                "a network interface Lambda has not yet removed after function {} left it",
                eni.function
            )
        })
}

pub(crate) async fn create(
    sim: &SimCloud,
    d: &Desired,
    spec: &LambdaFunctionSpec,
) -> Result<Observed> {
    let op = "CreateFunction";
    S3Object::parse(op, &spec.code)?;
    let name = spec.name.clone();
    let mut tags = d.tags.clone();
    tags.insert(TAG_CODE.to_string(), spec.code.clone());
    let sha = sim
        .call("lambda", op, |w, now| {
            let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
                return Err(validation(
                    op,
                    format!("Value '{name}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern"),
                ));
            }
            if w.get(Kind::LambdaFunction, &name).is_some() {
                return Err(terminal(
                    op,
                    "FunctionAlreadyExists",
                    format!("ResourceConflictException: Function already exist: {name}"),
                ));
            }
            check_configuration(w, op, spec)?;
            check_architecture(op, &spec.architecture)?;
            let sha = code_sha256(&spec.code);
            let created = LambdaFunctionSpec {
                reserved_concurrency: 0,
                ..spec.clone()
            };
            let ready = now + w.jittered(7.5, 2.5);
            let arn = arn(w, &name);
            w.insert(Kind::LambdaFunction, &name, created.into(), tags, now);
            if let Some(r) = w.get_mut(Kind::LambdaFunction, &name) {
                r.arn = Some(arn);
                r.phase = Phase::Pending(ready);
                r.attributes.insert("codeSha256".into(), sha.clone());
            }
            Ok(sha)
        })
        .await?;
    record_code(sim, &name, &spec.code, &sha).await?;
    if spec.reserved_concurrency != 0 {
        concurrency(sim, &name, spec.reserved_concurrency).await?;
    }
    sim.snapshot(Kind::LambdaFunction, &name)
}

/// `TagResource`: the source and the hash just deployed.
async fn record_code(sim: &SimCloud, name: &str, source: &str, sha: &str) -> Result<()> {
    let tags = BTreeMap::from([
        (TAG_CODE.to_string(), source.to_string()),
        (TAG_CODE_SHA256.to_string(), sha.to_string()),
    ]);
    sim.call("lambda", "TagResource", |w, _| {
        let record = w.get_mut(Kind::LambdaFunction, name).ok_or_else(|| {
            not_found(
                "TagResource",
                "ResourceNotFoundException",
                format!("Function not found: {name}"),
            )
        })?;
        record.tags.extend(tags);
        Ok(())
    })
    .await
}

/// `PutFunctionConcurrency` (or `DeleteFunctionConcurrency` for 0).
async fn concurrency(sim: &SimCloud, name: &str, reserved: i32) -> Result<()> {
    let op = if reserved == 0 {
        "DeleteFunctionConcurrency"
    } else {
        "PutFunctionConcurrency"
    };
    sim.call("lambda", op, |w, _| {
        if w.get(Kind::LambdaFunction, name).is_none() {
            return Err(missing_function(w, op, name));
        }
        if reserved < 0 {
            return Err(validation(
                op,
                format!("Value '{reserved}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"),
            ));
        }
        let others: i32 = w
            .specs::<LambdaFunctionSpec>()
            .filter(|(r, _)| r.id != name)
            .map(|(_, f)| f.reserved_concurrency)
            .sum();
        if ACCOUNT_CONCURRENCY - others - reserved < MIN_UNRESERVED {
            return Err(invalid(
                op,
                format!("Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."),
            ));
        }
        if let Some(function) = w.spec_mut::<LambdaFunctionSpec>(name) {
            function.reserved_concurrency = reserved;
        }
        Ok(())
    })
    .await
}

/// The configuration fields (all but name, architecture, concurrency and code) differ.
fn configuration_differs(want: &LambdaFunctionSpec, have: &LambdaFunctionSpec) -> bool {
    let sorted = |items: &[String]| {
        let mut items = items.to_vec();
        items.sort();
        items
    };
    want.role_arn != have.role_arn
        || want.runtime != have.runtime
        || want.handler != have.handler
        || want.memory_mib != have.memory_mib
        || want.timeout_seconds != have.timeout_seconds
        || sorted(&want.subnet_ids) != sorted(&have.subnet_ids)
        || sorted(&want.security_group_ids) != sorted(&have.security_group_ids)
        || want.environment != have.environment
        || want.kms_key_arn != have.kms_key_arn
        || want.tracing_mode != have.tracing_mode
}

/// `Ok(false)` for a call refused because an update is in progress (or the function is
/// still `Pending`): what it would change waits for the next pass.
fn done_unless_in_progress(result: Result<()>) -> Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(CloudError::DependencyViolation { message, .. })
            if message.starts_with("ResourceConflictException") =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Concurrency, then the configuration, then the code (with the architecture), each only
/// when it differs. The configuration update leaves the function `InProgress`, so a code
/// change in the same update is refused and waits for the next pass (as on AWS).
pub(crate) async fn update(
    sim: &SimCloud,
    d: &Desired,
    o: &Observed,
    want: &LambdaFunctionSpec,
    have: &LambdaFunctionSpec,
) -> Result<Observed> {
    d.spec
        .check_immutable("UpdateFunctionConfiguration", &o.spec)?;
    let name = o.id.as_str();
    let code_changes = want.code != have.code || want.architecture != have.architecture;
    if code_changes {
        S3Object::parse("UpdateFunctionCode", &want.code)?;
    }
    if want.reserved_concurrency != have.reserved_concurrency {
        concurrency(sim, name, want.reserved_concurrency).await?;
    }
    if configuration_differs(want, have) {
        let op = "UpdateFunctionConfiguration";
        let result = sim
            .call("lambda", op, |w, now| {
                let current = LambdaFunctionSpec::of(&idle(w, op, name)?.spec)
                    .cloned()
                    .unwrap_or_default();
                let next = LambdaFunctionSpec {
                    role_arn: want.role_arn.clone(),
                    runtime: want.runtime.clone(),
                    handler: want.handler.clone(),
                    memory_mib: want.memory_mib,
                    timeout_seconds: want.timeout_seconds,
                    subnet_ids: want.subnet_ids.clone(),
                    security_group_ids: want.security_group_ids.clone(),
                    environment: want.environment.clone(),
                    kms_key_arn: want.kms_key_arn.clone(),
                    tracing_mode: want.tracing_mode.clone(),
                    ..current.clone()
                };
                check_configuration(w, op, &next)?;
                leave_interfaces(w, name, &interfaces(&current), &interfaces(&next), now);
                let until = now + w.jittered(3.5, 1.5);
                if let Some(r) = w.get_mut(Kind::LambdaFunction, name) {
                    r.spec = next.into();
                    r.phase = Phase::Pending(until);
                }
                Ok(())
            })
            .await;
        done_unless_in_progress(result)?;
    }
    if code_changes {
        let op = "UpdateFunctionCode";
        let result = sim
            .call("lambda", op, |w, now| {
                idle(w, op, name)?;
                check_architecture(op, &want.architecture)?;
                let sha = code_sha256(&want.code);
                let until = now + w.jittered(3.5, 1.5);
                if let Some(r) = w.get_mut(Kind::LambdaFunction, name) {
                    r.phase = Phase::Pending(until);
                    r.attributes.insert("codeSha256".into(), sha);
                }
                if let Some(function) = w.spec_mut::<LambdaFunctionSpec>(name) {
                    function.architecture = want.architecture.clone();
                    function.code = want.code.clone();
                }
                Ok(())
            })
            .await;
        if done_unless_in_progress(result)? {
            let sha = sim
                .world()
                .get(Kind::LambdaFunction, name)
                .and_then(|r| r.attributes.get("codeSha256").cloned())
                .unwrap_or_default();
            record_code(sim, name, &want.code, &sha).await?;
        }
    }
    sync_tags(sim, Kind::LambdaFunction, name, &d.tags, &o.tags).await?;
    sim.snapshot(Kind::LambdaFunction, name)
}

pub(crate) async fn delete(sim: &SimCloud, name: &str) -> Result<()> {
    let result = sim
        .call("lambda", "DeleteFunction", |w, now| {
            let op = "DeleteFunction";
            if w.get(Kind::LambdaFunction, name).is_none() {
                return Err(missing_function(w, op, name));
            }
            let Some(record) = w.remove(name) else {
                return Err(missing_function(w, op, name));
            };
            if let Some(function) = LambdaFunctionSpec::of(&record.spec) {
                leave_interfaces(w, name, &interfaces(function), &[], now);
            }
            Ok(())
        })
        .await;
    ok_if_missing(result)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::super::SimCloud;
    use super::super::testkit::*;
    use crate::cloud::{
        CloudError, IamRoleSpec, Kind, LambdaFunctionSpec, Observed, Provider, Spec, State,
    };
    use crate::engine::diff::diff;

    /// A role Lambda can assume; returns its ARN.
    pub(crate) async fn lambda_role(sim: &SimCloud, name: &str) -> String {
        let role = make(
            sim,
            &format!("role/{name}"),
            Spec::IamRole(IamRoleSpec {
                name: name.into(),
                trusted_service: "lambda.amazonaws.com".into(),
                statements: vec![],
            }),
        )
        .await;
        role.arn.expect("a role ARN")
    }

    pub(crate) fn function_spec(role: &str, subnet: &str, group: &str) -> LambdaFunctionSpec {
        LambdaFunctionSpec {
            name: "hipaa-clinic-prod-poller".into(),
            role_arn: role.into(),
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            architecture: "x86_64".into(),
            memory_mib: 256,
            timeout_seconds: 30,
            reserved_concurrency: 0,
            subnet_ids: if subnet.is_empty() {
                vec![]
            } else {
                vec![subnet.into()]
            },
            security_group_ids: if group.is_empty() {
                vec![]
            } else {
                vec![group.into()]
            },
            environment: BTreeMap::from([("TABLE".to_string(), "payments".to_string())]),
            kms_key_arn: String::new(),
            tracing_mode: "Active".into(),
            code: "s3://code/poller-1.zip".into(),
        }
    }

    fn spec_of(o: &Observed) -> LambdaFunctionSpec {
        match &o.spec {
            Spec::LambdaFunction(f) => f.clone(),
            other => panic!("{other:?}"),
        }
    }

    async fn until_available(sim: &SimCloud, name: &str) -> Observed {
        for _ in 0..1000 {
            let seen = observe_id(sim, Kind::LambdaFunction, name).await.unwrap();
            if seen.state == State::Available {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{name} never became available");
    }

    #[tokio::test]
    async fn pending_until_active_and_an_update_in_progress_defers_the_next_one() {
        // A slow clock, so that a busy machine cannot skip a state between two calls.
        let sim = sim_at(0.05);
        let role = lambda_role(&sim, "hipaa-exec").await;
        let spec = function_spec(&role, "", "");
        let created = make(&sim, "fn", spec.clone().into()).await;
        assert_eq!(created.id, spec.name);
        assert_eq!(
            created.arn.as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:hipaa-clinic-prod-poller")
        );
        // 7.5 s ± 2.5 s at time_scale 0.05: 250–500 ms; an update 100–250 ms.
        assert_eq!(created.state, State::Pending);
        assert_eq!(
            spec_of(&created),
            spec,
            "observed as asked, the code recorded"
        );
        // While Pending, a configuration update is refused (ResourceConflictException):
        // update reports the function Pending and leaves the change for the next pass.
        let bigger = LambdaFunctionSpec {
            memory_mib: 512,
            ..spec.clone()
        };
        sim.reset_calls();
        let deferred = sim
            .update(&desired("fn", bigger.clone().into()), &created)
            .await
            .unwrap();
        assert_eq!(deferred.state, State::Pending);
        assert_eq!(spec_of(&deferred).memory_mib, 256, "not applied yet");
        assert_eq!(
            count(&sim, "UpdateFunctionConfiguration"),
            1,
            "refused once"
        );
        let active = until_available(&sim, &spec.name).await;
        let updated = sim
            .update(&desired("fn", bigger.clone().into()), &active)
            .await
            .unwrap();
        assert_eq!(spec_of(&updated).memory_mib, 512);
        assert_eq!(updated.state, State::Pending, "LastUpdateStatus InProgress");
        // A code change right behind it waits too; it is applied once the first is done.
        let new_code = LambdaFunctionSpec {
            code: "s3://code/poller-2.zip".into(),
            ..bigger.clone()
        };
        let deferred = sim
            .update(&desired("fn", new_code.clone().into()), &updated)
            .await
            .unwrap();
        assert_eq!(spec_of(&deferred).code, "s3://code/poller-1.zip");
        let idle = until_available(&sim, &spec.name).await;
        let redeployed = sim
            .update(&desired("fn", new_code.clone().into()), &idle)
            .await
            .unwrap();
        assert_eq!(spec_of(&redeployed), new_code);
        assert!(
            diff(
                "fn",
                &new_code.into(),
                &desired("fn", spec.into()).tags,
                &redeployed
            )
            .is_empty()
        );
    }

    #[tokio::test]
    async fn code_deployed_by_hand_is_drift_and_update_redeploys_the_source() {
        let sim = sim();
        let role = lambda_role(&sim, "hipaa-exec").await;
        let spec = function_spec(&role, "", "");
        let d = desired("fn", spec.clone().into());
        let created = make(&sim, "fn", spec.clone().into()).await;
        let sha = created.attributes["codeSha256"].clone();
        assert_eq!(created.tags[crate::cloud::TAG_CODE_SHA256], sha);
        until_available(&sim, &spec.name).await;
        sim.deploy_function_code(&spec.name, "s3://elsewhere/hotfix.zip")
            .unwrap();
        let seen = observe_id(&sim, Kind::LambdaFunction, &spec.name)
            .await
            .unwrap();
        let drift = diff("fn", &d.spec, &d.tags, &seen);
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].field, "code");
        assert!(drift[0].actual.starts_with("unknown (sha256 "), "{drift:?}");
        sim.reset_calls();
        let repaired = sim.update(&d, &seen).await.unwrap();
        assert_eq!(ops(&sim), vec!["TagResource", "UpdateFunctionCode"]);
        assert_eq!(spec_of(&repaired).code, spec.code);
        assert_eq!(
            repaired.attributes["codeSha256"], sha,
            "the source's hash again"
        );
        // The code tags are the backend's: never drift, whatever the desired tags are.
        assert!(diff("fn", &d.spec, &d.tags, &repaired).is_empty());
    }

    #[test]
    fn each_source_has_its_own_hash_in_lambdas_format() {
        let a = super::code_sha256("s3://code/a.zip");
        assert_eq!(a, super::code_sha256("s3://code/a.zip"), "deterministic");
        assert_eq!(a.len(), 44, "32 bytes in base64: {a}");
        assert!(a.ends_with('='));
        for other in [
            "s3://code/b.zip",
            "s3://code/a.zip?versionId=2",
            "s3://cod/ea.zip",
        ] {
            assert_ne!(a, super::code_sha256(other), "{other}");
        }
        assert_eq!(super::base64(b"Man"), "TWFu");
        assert_eq!(super::base64(b"Ma"), "TWE=");
    }

    #[tokio::test]
    async fn a_vpc_function_holds_its_subnet_and_group_until_lambda_removes_its_interfaces() {
        // 30 min ± 10 at time_scale 0.0002: 240–480 ms.
        let sim = sim_at(0.0002);
        let net = network(&sim).await;
        let role = lambda_role(&sim, "hipaa-exec").await;
        let spec = function_spec(&role, &net.private, &net.sg);
        make(&sim, "fn", spec.clone().into()).await;
        let in_use = sim.delete(Kind::SecurityGroup, &net.sg).await.unwrap_err();
        assert!(
            in_use.retryable() && in_use.to_string().contains(&spec.name),
            "{in_use}"
        );
        sim.delete(Kind::LambdaFunction, &spec.name).await.unwrap();
        // The function is gone; its network interface is not, yet.
        for (kind, id) in [(Kind::SecurityGroup, &net.sg), (Kind::Subnet, &net.private)] {
            let held = sim.delete(kind, id).await.unwrap_err();
            assert!(
                matches!(held, CloudError::DependencyViolation { .. }),
                "{kind:?}: {held}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        sim.delete(Kind::SecurityGroup, &net.sg).await.unwrap();
        sim.delete(Kind::Subnet, &net.private).await.unwrap();
    }

    #[tokio::test]
    async fn what_lambda_checks_is_refused_before_anything_is_made() {
        let sim = sim();
        let net = network(&sim).await;
        let role = lambda_role(&sim, "hipaa-exec").await;
        let flow_role = make(&sim, "role/flow", role_spec("hipaa-flow", &[])).await;
        let ok = function_spec(&role, &net.private, &net.sg);
        let other_vpc = make(&sim, "vpc2", vpc_spec()).await;
        let foreign_sg = make(&sim, "sg2", sg_spec(&other_vpc.id, "x", vec![], vec![])).await;
        // (spec, error code, what the message says): each row one check.
        let rows: Vec<(LambdaFunctionSpec, &str, &str)> = vec![
            (
                LambdaFunctionSpec {
                    role_arn: flow_role.arn.clone().unwrap(),
                    ..ok.clone()
                },
                "InvalidParameterValueException",
                "cannot be assumed by Lambda",
            ),
            (
                LambdaFunctionSpec {
                    runtime: "python2.7".into(),
                    ..ok.clone()
                },
                "ValidationException",
                "runtime",
            ),
            (
                LambdaFunctionSpec {
                    memory_mib: 64,
                    ..ok.clone()
                },
                "ValidationException",
                "memorySize",
            ),
            (
                LambdaFunctionSpec {
                    security_group_ids: vec![],
                    ..ok.clone()
                },
                "InvalidParameterValueException",
                "both",
            ),
            (
                LambdaFunctionSpec {
                    security_group_ids: vec![foreign_sg.id.clone()],
                    ..ok.clone()
                },
                "InvalidParameterValueException",
                "one VPC",
            ),
            (
                LambdaFunctionSpec {
                    environment: BTreeMap::from([("AWS_REGION".into(), "x".into())]),
                    ..ok.clone()
                },
                "InvalidParameterValueException",
                "AWS_REGION",
            ),
            (
                LambdaFunctionSpec {
                    kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/none".into(),
                    ..ok.clone()
                },
                "InvalidParameterValueException",
                "KMS key",
            ),
            (
                LambdaFunctionSpec {
                    reserved_concurrency: 950,
                    ..ok.clone()
                },
                "InvalidParameterValueException",
                "UnreservedConcurrentExecution",
            ),
            (
                LambdaFunctionSpec {
                    code: "https://example.com/fn.zip".into(),
                    ..ok.clone()
                },
                "InvalidParameterValueException",
                "s3://",
            ),
        ];
        for (n, (spec, want, says)) in rows.into_iter().enumerate() {
            let name = format!("hipaa-f{n}");
            let spec = LambdaFunctionSpec {
                name: name.clone(),
                ..spec
            };
            let err = sim.create(&desired(&name, spec.into())).await.unwrap_err();
            assert_eq!(code(&err), want, "{n}: {err}");
            assert!(err.to_string().contains(says), "{n}: {err}");
            // The concurrency is refused after CreateFunction (as on AWS); the rest before.
            let exists = observe_id(&sim, Kind::LambdaFunction, &name)
                .await
                .is_some();
            assert_eq!(exists, says == "UnreservedConcurrentExecution", "{n}");
        }
        make(&sim, "fn", ok.clone().into()).await;
        let taken = sim.create(&desired("fn2", ok.into())).await.unwrap_err();
        assert_eq!(code(&taken), "FunctionAlreadyExists");
    }
}
