//! The log subscriber as a user sees it: a child process (this test binary, re-run with
//! `KS_TELEMETRY_CHILD` set) installs it with the options a test gives and logs what the
//! daemon logs; the parent reads the child's stderr, or the datagrams of a journal socket the
//! test owns.

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use telemetry::logging::{self, LogFormat};

/// Not a test of its own: the child's body, run only when the parent set `KS_TELEMETRY_CHILD`
/// (`--log-level` value) and `KS_TELEMETRY_FORMAT` (`text` or `json`).
#[test]
fn child_process() {
    let Ok(level) = std::env::var("KS_TELEMETRY_CHILD") else { return };
    let format = match std::env::var("KS_TELEMETRY_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let destination = logging::init(&level, format);
    eprintln!("destination {destination:?}");
    tracing::debug!("a debug line");
    tracing::info!("keysteward running with fw_a.cfg");
    tracing::warn!(
        peer = "branch1",
        conn_id = 7u64,
        exchange = "main mode",
        reason = "no proposal chosen",
        "main mode with 192.0.2.2 (peer branch1) failed waiting for MM2: no proposal chosen"
    );
    tracing::info!(spi = "0000abcd", "a line with another field");
    if std::env::var("KS_TELEMETRY_RAISE").is_ok() {
        tracing::debug!(target: "ks::ike", "ike debug before");
        logging::raise(Some("ks::ike=debug")).expect("raised");
        tracing::debug!(target: "ks::ike", "ike debug while raised");
        tracing::debug!(target: "ks::other", "other debug while raised");
        logging::raise(None).expect("lowered");
        tracing::debug!(target: "ks::ike", "ike debug after");
        assert!(logging::raise(Some("ks::ike=nonsense[")).is_err(), "a bad directive is refused");
    }
}

/// Runs [`child_process`] with `--log-level level`, `format` and the extra environment.
fn child(level: &str, format: &str, env: &[(&str, &str)], wrap: Option<Vec<String>>) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    let mut args: Vec<String> = wrap.unwrap_or_default();
    args.push(exe.to_string_lossy().into_owned());
    args.extend(["--exact", "child_process", "--nocapture", "--test-threads=1"].map(String::from));
    let mut command = Command::new(&args[0]);
    command.args(&args[1..]).env("KS_TELEMETRY_CHILD", level).env("KS_TELEMETRY_FORMAT", format);
    command.env_remove("RUST_LOG").env_remove("JOURNAL_STREAM");
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

fn stderr_of(output: &Output) -> String {
    assert!(output.status.success(), "child failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Without `RUST_LOG`, `--log-level` decides; `RUST_LOG` overrides it, with target directives.
#[test]
fn rust_log_is_honoured_and_log_level_is_the_default() {
    let debug = stderr_of(&child("debug", "text", &[], None).output().unwrap());
    assert!(debug.contains("a debug line") && debug.contains("keysteward running"), "{debug}");

    let info = stderr_of(&child("info", "text", &[], None).output().unwrap());
    assert!(!info.contains("a debug line") && info.contains("keysteward running"), "{info}");

    let warn = stderr_of(&child("debug", "text", &[("RUST_LOG", "warn")], None).output().unwrap());
    assert!(!warn.contains("a debug line") && !warn.contains("keysteward running"), "{warn}");
    assert!(warn.contains("WARN") && warn.contains("no proposal chosen"), "{warn}");
    // Text lines are the message: the fields for journald and JSON are not repeated...
    assert!(warn.lines().any(|l| l.ends_with("failed waiting for MM2: no proposal chosen")), "{warn}");
    // ... other fields follow it.
    assert!(debug.contains("a line with another field spi=\"0000abcd\""), "{debug}");

    // A directive for another target turns this one off.
    let other =
        stderr_of(&child("debug", "text", &[("RUST_LOG", "somewhere_else=trace")], None).output().unwrap());
    assert!(!other.contains("no proposal chosen"), "{other}");

    // An empty RUST_LOG is unset, as env_logger treats it.
    let empty = stderr_of(&child("info", "text", &[("RUST_LOG", "")], None).output().unwrap());
    assert!(empty.contains("keysteward running"), "{empty}");
}

/// A filter that does not parse: a warning names it, and the daemon logs at info.
#[test]
fn a_bad_filter_is_named_and_info_is_used() {
    let out = stderr_of(&child("debug", "text", &[("RUST_LOG", "info,[[")], None).output().unwrap());
    assert!(out.contains("RUST_LOG 'info,[[' is not a log filter"), "{out}");
    assert!(out.contains("keysteward running") && !out.contains("a debug line"), "{out}");
}

/// `--log-format json`: every log line is a JSON object with the level, the message and the
/// event's fields at the top level.
#[test]
fn json_lines_parse_and_carry_the_fields() {
    let out = stderr_of(&child("info", "json", &[], None).output().unwrap());
    let lines: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| !l.starts_with("destination"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(lines[0]["message"], "keysteward running with fw_a.cfg");
    let failure = &lines[1];
    assert_eq!(failure["level"], "WARN");
    assert_eq!(failure["peer"], "branch1");
    assert_eq!(failure["conn_id"], 7);
    assert_eq!(failure["exchange"], "main mode");
    assert_eq!(failure["reason"], "no proposal chosen");
    assert!(failure["timestamp"].is_string(), "{failure}");
}

/// `JOURNAL_STREAM` that names another file than stderr (a program started by a service):
/// the logs stay on stderr.
#[test]
fn journal_stream_of_another_file_leaves_logs_on_stderr() {
    let out = stderr_of(&child("info", "text", &[("JOURNAL_STREAM", "1:1")], None).output().unwrap());
    assert!(out.contains("destination Stderr(Text)") && out.contains("keysteward running"), "{out}");
}

/// One journald native-protocol datagram as `(FIELD, value)` pairs: `FIELD=value\n`, or for
/// values with a newline `FIELD\n`, a little-endian u64 length, the value and `\n`.
fn journal_fields(mut datagram: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !datagram.is_empty() {
        let end = datagram.iter().position(|&b| b == b'\n').expect("field ends with a newline");
        let line = &datagram[..end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let (k, v) = (&line[..eq], &line[eq + 1..]);
            fields.push((String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()));
            datagram = &datagram[end + 1..];
        } else {
            let rest = &datagram[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let value = &rest[8..8 + len];
            assert_eq!(rest[8 + len], b'\n');
            fields.push((
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
            datagram = &rest[8 + len + 1..];
        }
    }
    fields
}

/// Under systemd (stderr is the journal stream `JOURNAL_STREAM` names) the events go to
/// journald with their fields as journal fields. tracing-journald always sends to
/// /run/systemd/journal/socket, so the child runs in a mount namespace of its own where that
/// path is a socket this test bound (a tmpfs over /run there; the host's /run is untouched).
#[test]
fn under_systemd_events_go_to_the_journal_with_native_fields() {
    if !Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
        eprintln!("skipped: needs root for a mount namespace (CI runs it as root)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ks-telemetry-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let socket_path = dir.join("journal.sock");
    let journal = UnixDatagram::bind(&socket_path).unwrap();
    journal.set_nonblocking(true).unwrap();
    let stderr_path = dir.join("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let script = "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal \
                  && : > /run/systemd/journal/socket \
                  && mount --bind \"$KS_JOURNAL\" /run/systemd/journal/socket && exec \"$@\"";
    let wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"];
    let status = child("info", "text", &[("JOURNAL_STREAM", &stream)], Some(wrap.map(String::from).to_vec()))
        .env("KS_JOURNAL", &socket_path)
        .stdout(Stdio::null())
        .stderr(stderr)
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("destination Journald"), "{stderr}");
    assert!(!stderr.contains("keysteward running"), "the log went to stderr as well: {stderr}");

    let mut entries = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = journal.recv(&mut buf) {
        if n > 0 {
            entries.push(journal_fields(&buf[..n]));
        }
    }
    let get = |e: &Vec<(String, String)>, k: &str| e.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let failure = entries
        .iter()
        .find(|e| get(e, "MESSAGE").is_some_and(|m| m.contains("no proposal chosen")))
        .unwrap_or_else(|| panic!("no failure entry in {entries:?}"));
    assert_eq!(get(failure, "PRIORITY").as_deref(), Some("4"), "warning");
    assert_eq!(get(failure, "SYSLOG_IDENTIFIER").as_deref(), Some("keysteward"));
    assert_eq!(get(failure, "PEER").as_deref(), Some("branch1"));
    assert_eq!(get(failure, "CONN_ID").as_deref(), Some("7"));
    assert_eq!(get(failure, "EXCHANGE").as_deref(), Some("main mode"));
    assert_eq!(get(failure, "REASON").as_deref(), Some("no proposal chosen"));
    let info = entries.iter().find(|e| get(e, "MESSAGE").is_some_and(|m| m.contains("keysteward running")));
    assert_eq!(info.and_then(|e| get(e, "PRIORITY")).as_deref(), Some("6"), "{entries:?}");
    assert!(!entries.iter().any(|e| get(e, "MESSAGE").is_some_and(|m| m.contains("debug line"))));
}

/// `debugging ike` / `undo debugging ike`: [`logging::raise`] adds a directive to the filter
/// in force at run time, for its target only, and `None` goes back to the filter of start-up.
#[test]
fn the_filter_is_raised_and_lowered_at_run_time() {
    let out = stderr_of(&child("info", "text", &[("KS_TELEMETRY_RAISE", "1")], None).output().unwrap());
    assert!(out.contains("ike debug while raised"), "{out}");
    assert!(!out.contains("ike debug before") && !out.contains("ike debug after"), "{out}");
    assert!(!out.contains("other debug while raised"), "{out}");
    assert!(out.contains("keysteward running"), "{out}");
}
