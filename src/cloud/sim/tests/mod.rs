//! Behaviour across kinds: ids, observe, consistency, faults, counting, console edits,
//! dependency violations, updates, and the kind registry followed.

mod console;
mod dependencies;
mod faults;
mod observe;
mod registry;
mod updates;
