//! `keysteward shell` pages long output as VRP does: on a pseudo-terminal of unknown height
//! (24 lines then), `  ---- More ----` after 23 lines; space shows the next screen, Enter the
//! next line, `q` (or Ctrl-C) stops — and the pages of the display after what was shown are
//! never asked of the daemon. Filtered displays are filtered first, then paged; `| count` is
//! never paged; `display current-configuration` (one answer, not pages) is paged too;
//! `screen-length 0 temporary` turns paging off for the session and `undo screen-length
//! temporary` back on. The daemon is the library's control server answering `display ike
//! sa` in pages from 1,000 fabricated SAs with the daemon's page renderer, counting the pages
//! asked for.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keysteward::control::{server, Request, Response};
use keysteward::display::{ike_sa_key, ike_sa_text, page, IkeSaRow};

#[path = "common/pty.rs"]
mod pty;

const SAS: u64 = 1_000;
const MORE: &str = "  ---- More ----";

fn rows() -> Vec<IkeSaRow> {
    (0..SAS)
        .map(|i| IkeSaRow {
            conn_id: 1 + (i * 7919) % SAS,
            peer: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            flags: vec!["RD"],
            phase: "v1:1",
            vpn: "public",
        })
        .collect()
}

/// The whole `display ike sa`, as the unpaged renderer writes it.
fn whole() -> String {
    let mut rows = rows();
    rows.sort_by_key(ike_sa_key);
    ike_sa_text(&rows)
}

/// A running configuration of 3 + 2 × 60 + 1 lines.
fn configuration() -> String {
    let proposals: String = (1..=60).map(|i| format!("ike proposal {i}\n#\n")).collect();
    format!("#\nsysname FW_A\n#\n{proposals}return\n")
}

/// Serves `path`: `display ike sa` in pages only (counted), the configuration whole.
fn serve(path: PathBuf) -> Arc<AtomicUsize> {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = server::bind(&path).unwrap();
            ready_tx.send(()).unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<server::Pending>(4);
            tokio::spawn(server::accept(listener, tx));
            let rows = rows();
            while let Some((request, _uid, reply)) = rx.recv().await {
                let response = match request {
                    Request::Page { display, after, rows: size } if *display == Request::DisplayIkeSa => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let size = size.min(keysteward::control::MAX_PAGE_ROWS) as usize;
                        let p = page::ike_sa(rows.clone(), after.as_deref(), size).unwrap();
                        keysteward::control::Page { text: p.text, json: p.json, next: p.next }.into_response()
                    }
                    Request::DisplayCurrentConfiguration => {
                        Response::Ok { text: configuration(), json: serde_json::Value::Null }
                    }
                    other => Response::Error(format!("not served here: {other:?}")),
                };
                let _ = reply.send(response);
            }
        });
    });
    ready_rx.recv().unwrap();
    asked
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The lines of `text` as the terminal showed them: CR LF, and the More prompt erased
/// (`\r`, blanks, `\r`).
fn shown(text: &str) -> Vec<String> {
    let erase = format!("\r{}\r", " ".repeat(MORE.len()));
    text.replace(&format!("{MORE}{erase}"), "")
        .replace(&erase, "")
        .replace("\r\n", "\n")
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect()
}

/// Waits for the next `---- More ----`; the lines shown since the last key.
fn more(p: &mut rexpect::session::PtySession) -> Vec<String> {
    let before = p.exp_string(MORE).unwrap_or_else(|e| panic!("waiting for {MORE}: {e}"));
    shown(&before)
}

/// `q` at More: straight away (nothing shown before it) the More prompt is erased (`\r`,
/// blanks, `\r`) and the shell's prompt takes its line. Returns what matched.
fn quit(p: &mut rexpect::session::PtySession) -> String {
    stop(p, "q")
}

/// `key` at More stops the display as `q` does ([`quit`]).
fn stop(p: &mut rexpect::session::PtySession, key: &str) -> String {
    p.send(key).unwrap();
    p.flush().unwrap();
    let pattern = format!(r"^\r {{{}}}\r(\x1b\[[?0-9;]*[a-zA-Z]|\r)*\x1b\[K<FW_A>", MORE.len());
    p.exp_regex(&pattern).unwrap_or_else(|e| panic!("waiting for the prompt after q: {e}")).1
}

#[test]
fn long_output_stops_at_more() {
    let dir = std::env::temp_dir().join(format!("keysteward-shell-pager-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = Dir(dir);
    let control = dir.0.join("control.sock");
    let asked = serve(control.clone());
    let whole = whole();
    let lines: Vec<&str> = whole.lines().collect();
    let mut p = pty::spawn(pty::shell_command(&control, &dir.0), "<FW_A>");

    // 23 lines (the terminal does not say its height: 24), then More.
    p.send_line("dis ike sa").unwrap();
    let first = more(&mut p);
    assert_eq!(first.last().map(String::as_str), Some(lines[22]), "{first:?}");
    assert!(first.iter().any(|l| l == lines[0]) && !first.iter().any(|l| l == lines[23]));
    // Space: the next 23.
    p.send(" ").unwrap();
    p.flush().unwrap();
    assert_eq!(more(&mut p), lines[23..46]);
    // Enter: one more.
    p.send("\r").unwrap();
    p.flush().unwrap();
    assert_eq!(more(&mut p), [lines[46]]);
    // q: the prompt, on a line of its own, and nothing more of the display.
    let rest = quit(&mut p);
    assert!(!rest.contains(lines[47]), "a line after q was shown: {rest:?}");
    // 47 lines of 1,004: the first page (100 rows) was all it took.
    assert_eq!(asked.swap(0, Ordering::SeqCst), 1);

    // Filtered first, then paged: the 23 first lines whose conn-id starts with 5 (5,
    // 50-59, 500-511), which lie in the first 6 pages; `q` leaves the other 4 unasked.
    p.send_line("dis ike sa | include ^5").unwrap();
    let filtered = more(&mut p);
    let expected: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with('5')).take(23).collect();
    assert_eq!(filtered[1..], expected, "{filtered:?}");
    quit(&mut p);
    assert_eq!(asked.swap(0, Ordering::SeqCst), 6);

    // `| count` is one line, never paged; it reads the whole display.
    let count = pty::type_line(&mut p, "dis ike sa | count", "<FW_A>");
    assert!(count.contains(&format!("Total lines: {}.", lines.len())) && !count.contains(MORE), "{count}");
    assert_eq!(asked.swap(0, Ordering::SeqCst), 10);

    // A local display (one answer) is paged too.
    p.send_line("display current-configuration").unwrap();
    let config = configuration();
    let config_lines: Vec<&str> = config.lines().collect();
    assert_eq!(more(&mut p)[1..], config_lines[..23]);
    // Ctrl-C stops it as `q` does, and the shell goes on.
    let rest = stop(&mut p, "\x03");
    assert!(!rest.contains("ike proposal 11\r"), "{rest:?}");

    // `screen-length 0 temporary`: all of it at once, then the prompt.
    pty::type_line(&mut p, "screen-length 0 temporary", "<FW_A>");
    p.send_line("dis ike sa").unwrap();
    let all = pty::prompt(&mut p, "<FW_A>");
    assert!(!all.contains(MORE));
    assert!(shown(&all).ends_with(&[lines[lines.len() - 1].to_owned()]), "the display did not end");
    assert_eq!(asked.swap(0, Ordering::SeqCst), 10);

    // `undo screen-length temporary`: paged again.
    pty::type_line(&mut p, "undo screen-length temporary", "<FW_A>");
    p.send_line("dis ike sa").unwrap();
    more(&mut p);
    quit(&mut p);
    p.send_line("quit").unwrap();
    p.exp_eof().unwrap();
    let _ = std::fs::remove_file(&control);
}
