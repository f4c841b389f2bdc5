//! Runs untrusted Python in isolation (bubblewrap, seccomp, cgroups, rlimits,
//! a watchdog and an output cap) and streams its output.
//!
//! Not built yet: issue 5 fills this crate in. It exists now so the workspace
//! has its final shape and dependency direction (`protocol ← sandbox`).
