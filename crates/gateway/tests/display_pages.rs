//! `keysteward display` on a hub with 10,000s of SAs: read page by page from the control
//! socket, through VRP's `---- More ----` on a terminal (a pty here), all of it into a pipe,
//! as JSON lines with `--json`, and counted with `--count`. The daemon's side is the
//! library's control server answering from 10,500 fabricated `display ike sa` lines with
//! the daemon's page renderer.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use keysteward::control::{server, Request, Response};
use keysteward::display::{ike_sa_key, ike_sa_text, page, IkeSaRow};

const SAS: u64 = 10_500;

fn rows() -> Vec<IkeSaRow> {
    rows_of(SAS)
}

/// `n` SAs, conn-ids 1 to `n` out of order (7919 is prime to `n`).
fn rows_of(n: u64) -> Vec<IkeSaRow> {
    (0..n)
        .map(|i| IkeSaRow {
            conn_id: 1 + (i * 7919) % n,
            peer: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            flags: vec!["RD"],
            phase: "v1:1",
            vpn: "public",
        })
        .collect()
}

/// The whole display, as the unpaged renderer writes it.
fn whole() -> String {
    whole_of(rows())
}

fn whole_of(mut rows: Vec<IkeSaRow>) -> String {
    rows.sort_by_key(ike_sa_key);
    ike_sa_text(&rows)
}

/// Whether the server of this test run answers as a daemon from before pages: with 1,000
/// SAs then (10,500 would not fit in one answer of the control socket — which is why pages
/// exist: the unpaged answer passes `MAX_LINE` and the client reads no answer).
const OLD_SAS: u64 = 1_000;

/// A control socket whose daemon answers the pages of `display ike sa` (and refuses the
/// unpaged request, so that the client must page); counts the pages asked for.
fn serve(path: PathBuf, knows_pages: bool) -> Arc<AtomicUsize> {
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
                    // A daemon from before pages: serde refuses the request's tag.
                    Request::Page { .. } if !knows_pages => {
                        Response::Error("unreadable request: unknown variant `page`".into())
                    }
                    Request::DisplayIkeSa if !knows_pages => Response::Ok {
                        text: whole_of(rows_of(OLD_SAS)),
                        json: serde_json::json!({ "sas": rows_of(OLD_SAS) }),
                    },
                    Request::Page { display, after, rows: size } if *display == Request::DisplayIkeSa => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let size = size.min(keysteward::control::MAX_PAGE_ROWS) as usize;
                        let p = page::ike_sa(rows.clone(), after.as_deref(), size).unwrap();
                        keysteward::control::Page { text: p.text, json: p.json, next: p.next }.into_response()
                    }
                    other => Response::Error(format!("not paged: {other:?}")),
                };
                let _ = reply.send(response);
            }
        });
    });
    ready_rx.recv().unwrap();
    asked
}

fn socket(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ks-pages-{name}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn display(control: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keysteward"))
        .args(["display", "ike", "sa", "--control"])
        .arg(control)
        .args(extra)
        .output()
        .unwrap()
}

/// Into a pipe: every page, the same text as the unpaged display; `--count` counts its
/// lines; `--json` is one JSON object a page whose rows are the display's, in order.
#[test]
fn off_a_terminal_the_whole_display_streams() {
    let path = socket("pipe");
    let asked = serve(path.clone(), true);
    let out = display(&path, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let whole = whole();
    assert!(String::from_utf8(out.stdout).unwrap() == whole, "the pages differ from the whole display");
    let pages = asked.load(Ordering::SeqCst);
    assert_eq!(pages, (SAS as usize).div_ceil(keysteward::control::DEFAULT_PAGE_ROWS as usize));

    let out = display(&path, &["--count"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("Total lines: {}.\n", whole.lines().count()));

    let out = display(&path, &["--json"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let objects: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objects.len(), pages);
    let conn_ids: Vec<u64> = objects
        .iter()
        .flat_map(|o| o["sas"].as_array().unwrap().iter().map(|s| s["conn_id"].as_u64().unwrap()))
        .collect();
    assert_eq!(conn_ids, (1..=SAS).collect::<Vec<_>>());
    let _ = std::fs::remove_file(&path);
}

/// Reads the pty until `pattern` has appeared `times` times in all that was read.
fn read_until(master: &mut std::fs::File, seen: &mut String, pattern: &str, times: usize) {
    let mut buf = [0u8; 4096];
    while seen.matches(pattern).count() < times {
        let n = master.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "the display ended before {pattern:?} #{times}; read: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// On a terminal of 10 rows: 9 lines then `---- More ----`; space shows 9 more, Enter one
/// more, `q` stops — and the client asked for no page past what it showed.
#[test]
fn on_a_terminal_more_between_screens() {
    let path = socket("pty");
    let asked = serve(path.clone(), true);
    let size = nix::pty::Winsize { ws_row: 10, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(&size, None).unwrap();
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_keysteward"))
        .args(["display", "ike", "sa", "--control"])
        .arg(&path)
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .unwrap();
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut seen = String::new();
    let whole = whole();
    let lines: Vec<&str> = whole.lines().collect();
    let more = "  ---- More ----";

    read_until(&mut master, &mut seen, more, 1);
    let first = seen.replace("\r\n", "\n");
    assert_eq!(first, format!("{}\n{more}", lines[..9].join("\n")));

    master.write_all(b" ").unwrap();
    read_until(&mut master, &mut seen, more, 2);
    let erase = format!("{more}\r{}\r", " ".repeat(more.len()));
    assert!(
        seen.replace("\r\n", "\n").ends_with(&format!("{erase}{}\n{more}", lines[9..18].join("\n"))),
        "{seen}"
    );

    master.write_all(b"\r").unwrap();
    read_until(&mut master, &mut seen, more, 3);
    assert!(seen.replace("\r\n", "\n").ends_with(&format!("{erase}{}\n{more}", lines[18])), "{seen}");

    master.write_all(b"q").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut rest = Vec::new();
    let _ = master.read_to_end(&mut rest);
    let shown = seen + &String::from_utf8_lossy(&rest);
    assert!(!shown.contains(lines[19]), "a line after q was shown");
    // 19 lines shown out of 10,504: the first page (100 rows) was all it needed.
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    let _ = std::fs::remove_file(&path);
}

/// A daemon older than pages (still running after the package's upgrade): the command line
/// asks it the unpaged display and prints it whole.
#[test]
fn a_daemon_without_pages_answers_whole() {
    let path = socket("old");
    let _ = serve(path.clone(), false);
    let out = display(&path, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap() == whole_of(rows_of(OLD_SAS)), "not the whole display");
    let _ = std::fs::remove_file(&path);
}
