//! What makes the keysteward daemon a system service: [`privilege`] (`run --user`, the capabilities it
//! keeps), [`notify`] (systemd's `Type=notify` readiness and watchdog) and [`config_file`]
//! (the configuration file's size bound and permissions).

#![forbid(unsafe_code)]

pub mod config_file;
pub mod notify;
pub mod privilege;

/// The system user and group of the packaged service (`packaging/`): the control socket's
/// group, whose members may run the displays.
pub const SERVICE_GROUP: &str = "keysteward";
