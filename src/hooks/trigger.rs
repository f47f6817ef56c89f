//! The triggers hooks are filed under (one folder per trigger id). The ids are part of the
//! configuration model, since routes name them too; the hooks layer re-exports them from there.

pub use crate::config::{Trigger, UnknownTrigger};
