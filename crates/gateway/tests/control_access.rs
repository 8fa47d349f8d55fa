//! Who may do what on the control socket (root only, to be another user; CI runs as root):
//! the socket is made mode 0660 group keysteward when that group exists, else 0600; any
//! client that can open it may run the displays; changes (`reset`, `reload`) are for root
//! and the daemon's own user only, decided by the kernel's record of the client
//! (`SO_PEERCRED`), not by anything the client says.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use keysteward::control::{server, Response};

const NOBODY: u32 = 65534;

/// A control socket served by the library's server, every request answered `answered`.
fn serve(path: PathBuf) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = server::bind(&path).unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<server::Pending>(4);
            tokio::spawn(server::accept(listener, tx));
            while let Some((request, _uid, reply)) = rx.recv().await {
                let text = format!("answered {}\n", serde_json::to_string(&request).unwrap());
                let _ = reply.send(Response::Ok { text, json: serde_json::Value::Null });
            }
        });
    });
}

fn keysteward(control: &Path, args: &[&str], uid: Option<u32>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keysteward"));
    command.args(args).arg("--control").arg(control);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    command.output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn displays_are_open_to_whoever_may_connect_changes_only_to_root_and_the_daemon_user() {
    if !text(&Command::new("id").arg("-u").output().unwrap()).starts_with("0\n") {
        eprintln!("skipped: needs root to act as another user (CI runs it as root)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("keysteward-control-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = RemoveDir(dir.clone());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let control = dir.join("control.sock");
    let group = Command::new("getent").args(["group", "keysteward"]).output().unwrap();
    serve(control.clone());
    let start = Instant::now();
    while !control.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }

    // The mode it was made with.
    let meta = std::fs::metadata(&control).unwrap();
    if group.status.success() {
        let gid: u32 = String::from_utf8_lossy(&group.stdout).split(':').nth(2).unwrap().parse().unwrap();
        assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, gid), "group keysteward");
    } else {
        assert_eq!(meta.mode() & 0o777, 0o600, "no group keysteward: the owner alone");
    }

    // Opened to everyone here, so that the credential check alone decides.
    std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o666)).unwrap();
    let shown = keysteward(&control, &["display", "ike", "sa"], Some(NOBODY));
    assert!(shown.status.success(), "{}", text(&shown));
    assert!(text(&shown).contains(r#"answered {"command":"display-ike-sa"}"#), "{}", text(&shown));
    let shown = keysteward(&control, &["show-config"], Some(NOBODY));
    assert!(shown.status.success(), "{}", text(&shown));

    let changes = [
        &["reset", "ike", "sa"][..],
        &["reset", "ipsec", "sa"],
        &["reload"],
        &["reset", "ike", "statistics"],
        &["reset", "ipsec", "statistics"],
        &["debugging", "ike"],
        &["undo", "debugging", "ike"],
    ];
    for args in changes {
        let refused = keysteward(&control, args, Some(NOBODY));
        let said = text(&refused);
        assert!(!refused.status.success(), "{args:?} as nobody: {said}");
        assert!(
            said.contains("changes the daemon's state: only root and the daemon's user (uid 0) may ask for it, not uid 65534"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("answered"), "{args:?} reached the daemon: {said}");
        let allowed = keysteward(&control, args, None);
        assert!(allowed.status.success(), "{args:?} as root: {}", text(&allowed));
    }
}

/// Removes the scratch directory on every way out.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
