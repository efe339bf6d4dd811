//! The simulator follows the kind registry for every kind in `Kind::ALL`: the describe
//! call observe makes, the immutable fields update refuses, how delete goes.

use crate::cloud::sim::testkit::*;
use crate::cloud::{DeleteMode, Kind, Lookup, Observed, Provider, Spec, State};

/// A resource of `kind` as observed, with no tags (it need not exist: what is checked
/// happens before any call).
fn observed(kind: Kind) -> Observed {
    Observed {
        id: "res-0123456789abcdef0".into(),
        arn: None,
        state: State::Available,
        spec: Spec::example(kind),
        tags: Default::default(),
        attributes: Default::default(),
    }
}

#[tokio::test]
async fn observe_is_the_kinds_describe_call() {
    let sim = sim();
    for kind in Kind::ALL {
        sim.reset_calls();
        let lookup = Lookup {
            node: "x".into(),
            recorded_id: None,
            desired: None,
        };
        sim.observe(kind, &owner(), &[lookup]).await.unwrap();
        let calls: Vec<(String, String)> = sim
            .calls()
            .into_keys()
            .map(|(service, operation, _)| (service, operation))
            .collect();
        let info = kind.info();
        assert_eq!(
            calls,
            vec![(info.service.to_string(), info.describe.to_string())],
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn update_refuses_every_immutable_field_before_any_call() {
    let sim = sim();
    for kind in Kind::ALL {
        for field in kind.info().immutable {
            let have = observed(kind);
            let want = desired("x", have.spec.with_changed(field));
            sim.reset_calls();
            let err = sim.update(&want, &have).await.unwrap_err();
            assert_eq!(
                code(&err),
                "InvalidParameterValue",
                "{kind:?} {field}: {err}"
            );
            assert!(
                err.to_string().contains(field),
                "{kind:?}: {err} names {field}"
            );
            assert!(ops(&sim).is_empty(), "{kind:?} {field}: no call");
        }
    }
}

#[tokio::test]
async fn delete_of_the_missing_succeeds_and_only_kinds_deleted_with_their_parent_skip_the_call() {
    let sim = sim();
    for kind in Kind::ALL {
        sim.reset_calls();
        sim.delete(kind, "res-0123456789abcdef0")
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let with_parent = kind.info().deletion == DeleteMode::WithParent;
        assert_eq!(
            ops(&sim).is_empty(),
            with_parent,
            "{kind:?}: {:?}",
            ops(&sim)
        );
    }
}
