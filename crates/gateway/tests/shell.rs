//! `keysteward shell` as an operator and a script meet it, against a control socket served by
//! a stand-in daemon that records every request (the daemon's
//! side of the console is tested with the daemon): on a pseudo-terminal the prompts of
//! every view, abbreviations, `?`, Tab, Ctrl-Z, VRP's caret errors, `display … | include`,
//! `save`'s question and the history file; without a terminal, `-c` and standard input.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use keysteward::control::{Request, Response};

#[path = "common/pty.rs"]
mod pty;
use pty::shell_command;

/// Every request the stand-in daemon received.
type Log = Arc<Mutex<Vec<Request>>>;

/// Serves `path` with a stand-in daemon speaking the control protocol (one JSON request
/// line in, one JSON response line out): `display current-configuration` shows the sysname
/// and the lines configured so far; `save` succeeds; anything else is answered with its own
/// JSON, so the test sees which request a line became.
fn serve(path: PathBuf) -> Log {
    let log: Log = Arc::default();
    let seen = log.clone();
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let request: Request = serde_json::from_str(&line).unwrap();
            seen.lock().unwrap().push(request.clone());
            let text = answer(&seen.lock().unwrap(), &request);
            let mut reply =
                serde_json::to_string(&Response::Ok { text, json: serde_json::Value::Null }).unwrap();
            reply.push('\n');
            let _ = (&stream).write_all(reply.as_bytes());
        }
    });
    log
}

fn answer(log: &[Request], request: &Request) -> String {
    let configured: Vec<&String> = log
        .iter()
        .filter_map(|r| match r {
            Request::Configure { line, .. } => Some(line),
            _ => None,
        })
        .collect();
    match request {
        Request::DisplayCurrentConfiguration => {
            let sysname = configured.iter().rev().find_map(|l| l.strip_prefix("sysname ")).unwrap_or("FW_A");
            let mut text = format!("#\nsysname {sysname}\n#\n");
            for line in configured.iter().filter(|l| !l.starts_with("sysname")) {
                text.push_str(&format!("{line}\n"));
            }
            text + "return\n"
        }
        Request::Save => "Info: Save the configuration successfully.\n".into(),
        Request::Configure { .. } => String::new(),
        other => format!("answered {}\n", serde_json::to_string(other).unwrap()),
    }
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("keysteward-shell-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
}

fn configure(views: &[&str], line: &str) -> Request {
    Request::Configure { views: views.iter().map(|v| (*v).to_string()).collect(), line: line.into() }
}

fn configured(log: &Log) -> Vec<Request> {
    log.lock().unwrap().iter().filter(|r| matches!(r, Request::Configure { .. })).cloned().collect()
}

fn spawn(control: &Path, state: &Path) -> rexpect::session::PtySession {
    pty::spawn(shell_command(control, state), "<FW_A>")
}

#[test]
fn an_operator_on_a_terminal() {
    let dir = scratch("pty");
    let control = dir.0.join("control.sock");
    let log = serve(control.clone());
    let mut p = spawn(&control, &dir.0);
    p.send_line("sys").unwrap();
    pty::prompt(&mut p, "[FW_A]");
    p.send_line("ike pro 10").unwrap();
    pty::prompt(&mut p, "[FW_A-ike-proposal-10]");
    p.send_line("enc aes-256").unwrap();
    pty::prompt(&mut p, "[FW_A-ike-proposal-10]");
    p.send_line("ike pe b").unwrap();
    pty::prompt(&mut p, "[FW_A-ike-peer-b]");
    p.send_line("pre Admin@123").unwrap();
    pty::prompt(&mut p, "[FW_A-ike-peer-b]");
    // Tab completes `exch` to `exchange-mode `.
    p.send("exch\t").unwrap();
    p.flush().unwrap();
    p.exp_string("exchange-mode ").unwrap();
    p.send_line("main").unwrap();
    pty::prompt(&mut p, "[FW_A-ike-peer-b]");
    // `?` lists the words that may follow, then gives the line back.
    p.send("remote-address ?").unwrap();
    p.flush().unwrap();
    p.exp_string("X.X.X.X").unwrap();
    pty::prompt(&mut p, "[FW_A-ike-peer-b]remote-address ");
    p.send_line("1.1.5.1").unwrap();
    pty::prompt(&mut p, "[FW_A-ike-peer-b]");
    // VRP's caret under the first word not understood, the prompt counted.
    p.send_line("remote-adress 1.1.5.1").unwrap();
    p.exp_string(&format!("\r\n{}^", " ".repeat("[FW_A-ike-peer-b]".len()))).unwrap();
    p.exp_string("Error: Unrecognized command found at '^' position.").unwrap();
    pty::prompt(&mut p, "[FW_A-ike-peer-b]");
    p.send_line("quit").unwrap();
    pty::prompt(&mut p, "[FW_A]");
    p.send_line("acl num 3001").unwrap();
    pty::prompt(&mut p, "[FW_A-acl-adv-3001]");
    p.send_line("ipsec policy policy1 1 isa").unwrap();
    pty::prompt(&mut p, "[FW_A-ipsec-policy-isakmp-policy1-1]");
    p.send_line("int GigabitEthernet0/0/2").unwrap();
    pty::prompt(&mut p, "[FW_A-GigabitEthernet0/0/2]");
    // Ctrl-Z: back to the user view.
    p.send_control('z').unwrap();
    pty::prompt(&mut p, "<FW_A>");
    p.send_line("dis cur | inc ^ike").unwrap();
    p.exp_string("ike proposal 10\r\nike peer b\r").unwrap();
    pty::prompt(&mut p, "<FW_A>");
    p.send_line("dis ike sa").unwrap();
    p.exp_string(r#"answered {"command":"display-ike-sa"}"#).unwrap();
    pty::prompt(&mut p, "<FW_A>");
    p.send_line("save").unwrap();
    p.exp_string("Are you sure to continue?[Y/N]:").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("Info: Save the configuration successfully.").unwrap();
    pty::prompt(&mut p, "<FW_A>");
    p.send_line("quit").unwrap();
    p.exp_eof().unwrap();

    assert_eq!(
        configured(&log),
        [
            configure(&[], "ike proposal 10"),
            configure(&["ike proposal 10"], "encryption-algorithm aes-256"),
            configure(&[], "ike peer b"),
            configure(&["ike peer b"], "pre-shared-key Admin@123"),
            configure(&["ike peer b"], "exchange-mode main"),
            configure(&["ike peer b"], "remote-address 1.1.5.1"),
            configure(&[], "acl number 3001"),
            configure(&[], "ipsec policy policy1 1 isakmp"),
            configure(&[], "interface GigabitEthernet0/0/2"),
        ]
    );
    assert!(log.lock().unwrap().contains(&Request::Save));
    // The history is private and never holds a key.
    let history = dir.0.join("keysteward/shell_history");
    let mode = std::fs::metadata(&history).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let kept = std::fs::read_to_string(&history).unwrap();
    assert!(kept.contains("ike pro 10") && kept.contains("dis ike sa"), "{kept}");
    assert!(!kept.contains("Admin@123"), "{kept}");
}

#[test]
fn history_is_there_in_the_next_session() {
    let dir = scratch("history");
    let control = dir.0.join("control.sock");
    let _log = serve(control.clone());
    let mut p = spawn(&control, &dir.0);
    p.send_line("display ike proposal").unwrap();
    p.exp_string("answered").unwrap();
    pty::prompt(&mut p, "<FW_A>");
    p.send_line("quit").unwrap();
    p.exp_eof().unwrap();
    let mut p = spawn(&control, &dir.0);
    // Up arrow twice (past `quit`), Enter: a line of the previous session runs again.
    p.send("\x1b[A\x1b[A").unwrap();
    p.flush().unwrap();
    p.send_line("").unwrap();
    p.exp_string(r#"answered {"command":"display-ike-proposal"}"#).unwrap();
    p.send_line("quit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn scripts_get_output_only_and_stop_at_the_first_error() {
    let dir = scratch("script");
    let control = dir.0.join("control.sock");
    let log = serve(control.clone());
    // -c, repeatable: no prompt, only what the command prints.
    let out = shell_command(&control, &dir.0)
        .args(["-c", "dis ike sa", "-c", "display ipsec sa brief"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "answered {\"command\":\"display-ike-sa\"}\nanswered {\"command\":\"display-ipsec-sa-brief\"}\n"
    );
    // Standard input: the lines in order, `save` answered by the next line; the first error
    // stops the script with status 1, naming the line and the column, not the line's text.
    let mut child = shell_command(&control, &dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script =
        "system-view\nike peer c\n pre-shared-key Secret@1\nquit\nsave\ny\nike peeer d\nike peer e\n";
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Info: Save the configuration successfully.\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, "line 7: Error: Unrecognized command found at column 5.\n");
    assert_eq!(
        configured(&log),
        [configure(&[], "ike peer c"), configure(&["ike peer c"], "pre-shared-key Secret@1")]
    );
    // `?` in a script prints the list.
    let out = shell_command(&control, &dir.0).args(["-c", "system-view", "-c", "ike ?"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("  proposal                Specify a proposal\n"));
}
