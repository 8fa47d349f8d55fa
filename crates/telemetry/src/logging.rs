//! The log subscriber of `keysteward run`.
//!
//! Which events are logged: the `RUST_LOG` environment variable when it is set and not empty,
//! else `--log-level`; both take `tracing` filter directives (`info`, `warn,keysteward=debug`).
//! Where they go: when systemd runs the daemon with its stderr connected to the journal
//! (`JOURNAL_STREAM` names the device and inode of stderr, as systemd.exec(5) documents), to
//! journald over its native protocol, with the events' fields as journal fields (`PEER`,
//! `CONN_ID`, `EXCHANGE`, `REASON`) for `journalctl PEER=branch1`; otherwise to stderr as text or,
//! with `--log-format json`, as one JSON object per line.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The filter in force can be changed at run time (`debugging ike`): its handle, and the
/// directives [`init`] chose, which [`raise`] adds to and lowers back to.
static FILTER: OnceLock<(reload::Handle<EnvFilter, Registry>, String)> = OnceLock::new();

/// How log lines on stderr look (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message` and the event's fields.
    Json,
}

/// Where the logs went, as [`init`] chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// stderr, in the given format.
    Stderr(LogFormat),
    /// journald's native protocol.
    Journald,
}

/// The syslog identifier of the journal entries.
pub const SYSLOG_IDENTIFIER: &str = "keysteward";

/// Installs the global subscriber: the filter from `RUST_LOG` (when set and not empty) or
/// `log_level`, to journald when stderr is the journal, else to stderr in `format`. A filter
/// that does not parse is reported by a warning once logging runs, and `info` is used instead.
pub fn init(log_level: &str, format: LogFormat) -> Destination {
    let rust_log = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let (source, directives) = match &rust_log {
        Some(v) => ("RUST_LOG", v.as_str()),
        None => ("--log-level", log_level),
    };
    let (filter, bad_filter) = match EnvFilter::try_new(directives) {
        Ok(filter) => (filter, None),
        Err(e) => (EnvFilter::new("info"), Some(e)),
    };
    let base = if bad_filter.is_some() { "info".to_owned() } else { directives.to_owned() };
    let (filter, handle) = reload::Layer::new(filter);
    let _ = FILTER.set((handle, base));
    let journald = if stderr_is_journal() {
        tracing_journald::layer().ok().map(|l| {
            l.with_field_prefix(None)
                .with_syslog_identifier(SYSLOG_IDENTIFIER.to_owned())
                .with_priority_mappings(priorities())
        })
    } else {
        None
    };
    let destination = match journald {
        Some(_) => Destination::Journald,
        None => Destination::Stderr(format),
    };
    let text = (destination == Destination::Stderr(LogFormat::Text)).then(|| {
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .fmt_fields(TextFields)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    let json = (destination == Destination::Stderr(LogFormat::Json)).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry().with(filter).with(journald).with(text).with(json).init();
    if let Some(e) = bad_filter {
        tracing::warn!("{source} '{directives}' is not a log filter ({e}): logging at info");
    }
    destination
}

/// Adds `extra` (filter directives such as `keysteward::daemon::engine_io=debug`) to the
/// filter [`init`] installed, or with `None` goes back to that filter: the `debugging ike` and
/// `undo debugging ike` of the console. An error when logging was not initialised here or
/// the directives do not parse; nothing changes then.
pub fn raise(extra: Option<&str>) -> Result<(), String> {
    let Some((handle, base)) = FILTER.get() else { return Err("logging is not reloadable".into()) };
    let directives = match extra {
        Some(extra) => format!("{base},{extra}"),
        None => base.clone(),
    };
    let filter = EnvFilter::try_new(&directives).map_err(|e| format!("log filter '{directives}': {e}"))?;
    handle.reload(filter).map_err(|e| e.to_string())
}

/// The fields journald and JSON carry for filtering, which the text of the message already says.
pub const NATIVE_FIELDS: [&str; 4] = ["peer", "conn_id", "exchange", "reason"];

/// Text lines: the message, then any field other than the [`NATIVE_FIELDS`] as ` name=value`,
/// so that the text of a line is the same whatever fields the event carries for journald.
struct TextFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for TextFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut text = TextVisitor::default();
        fields.record(&mut text);
        write!(writer, "{}{}", text.message, text.rest)
    }
}

#[derive(Default)]
struct TextVisitor {
    message: String,
    rest: String,
}

impl tracing::field::Visit for TextVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            name if NATIVE_FIELDS.contains(&name) => {}
            name => _ = write!(self.rest, " {name}={value:?}"),
        }
    }
}

/// syslog's priorities for the levels, so that `journalctl -p info` shows info and not debug
/// (tracing-journald's default puts info at notice and debug at info).
fn priorities() -> tracing_journald::PriorityMappings {
    use tracing_journald::Priority;
    tracing_journald::PriorityMappings {
        info: Priority::Informational,
        debug: Priority::Debug,
        trace: Priority::Debug,
        ..tracing_journald::PriorityMappings::new()
    }
}

/// Whether stderr is the journal's stream: `JOURNAL_STREAM` (`DEVICE:INODE`, decimal) names
/// the file stderr is open on. A service whose stderr systemd connected elsewhere, or a
/// program started from one that inherited the variable, writes to stderr.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var("JOURNAL_STREAM").ok() else { return false };
    let Some((device, inode)) = stream.split_once(':') else { return false };
    let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else { return false };
    // `st_dev` and `st_ino` are u64 on x86-64 Linux but not on every target.
    #[allow(clippy::unnecessary_cast)]
    match rustix::fs::fstat(std::io::stderr().as_fd()) {
        Ok(stat) => stat.st_dev as u64 == device && stat.st_ino as u64 == inode,
        Err(_) => false,
    }
}
