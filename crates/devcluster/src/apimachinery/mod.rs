//! Pure request-parsing and patch helpers that mirror k8s.io/apimachinery
//! (v1.32) for the devcluster: label and field selectors, name validation and
//! `generateName`, strategic merge patch for the built-in kinds, and thin
//! JSON patch / merge patch wrappers.
//!
//! The sibling modules refer to each other through `super::`, so this file can
//! become the `mod.rs` of an `apimachinery` module unchanged.

pub mod fields;
pub mod labels;
pub mod names;
pub mod strategic;

pub use fields::{FieldRequirement, FieldSelector, parse_field_selector};
pub use labels::{LabelSelector, Operator, Requirement, parse_label_selector};
pub use names::{dns1123_label, dns1123_subdomain, generate_name, random_suffix};
pub use strategic::{
    SMP_UNSUPPORTED_MESSAGE, SmpError, apply_json_patch, apply_merge_patch, strategic_merge,
    strategic_merge_with_status, supports_strategic_merge,
};
