//! What makes the keysteward daemon a system service: [`privilege`] (`run --user`, the capabilities it
//! keeps), [`notify`] (systemd's `Type=notify` readiness and watchdog), [`config_file`] (the
//! configuration file's size bound and permissions), [`control_socket`] (its mode and who may
//! change things) and [`manual`] (the man pages and completions of the package).

#![forbid(unsafe_code)]

pub mod config_file;
pub mod control_socket;
pub mod manual;
pub mod notify;
pub mod privilege;

/// The system user and group of the packaged service (`packaging/`): the control socket's
/// group, whose members may run the displays.
pub const SERVICE_GROUP: &str = "keysteward";
