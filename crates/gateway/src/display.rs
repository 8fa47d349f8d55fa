//! The `display` outputs. The typed views and their pure renderers are the crate
//! `keysteward-display` (re-exported here); what reads the daemon's live state to fill them is
//! here: [`live`] answers the display requests from the engine, the records and the data
//! plane, [`summary`] builds the views that combine them, and [`paged`] answers their pages.

pub use vrp_display::*;

pub mod live;
pub mod paged;
pub mod summary;
