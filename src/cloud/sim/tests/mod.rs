//! Behaviour across kinds: ids, observe, consistency, faults, counting, console edits,
//! dependency violations and updates.

mod console;
mod dependencies;
mod faults;
mod observe;
mod updates;
