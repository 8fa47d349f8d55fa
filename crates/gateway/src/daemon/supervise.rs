//! Supervision: a panic anywhere in the daemon ends the process (issue 13, finding 12).
//!
//! The daemon is the IKE loop (tokio tasks on one thread: the loop, the UDP 500 readers, the
//! control socket's connections) and the data-plane threads (`esp-seal`, `esp-open`,
//! [`crate::data_path::fast_path`]). A panic in one of them used to end that thread or task
//! alone: tokio catches a task's panic, and a dead `esp-seal` leaves the IKE loop
//! negotiating SAs that carry no packet. Half alive is worse than dead, which a service
//! manager notices and restarts. So `keysteward run` installs [`install`] first: the panic
//! hook logs which thread panicked, where and why, then aborts the process. Release builds
//! also have `panic = "abort"` (workspace `Cargo.toml`), so no unwinding ever hides a panic.

use std::panic::PanicHookInfo;

use tracing::error;

/// Makes every panic, in any thread or task, log one line and abort the process.
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        error!("{}", report(std::thread::current().name(), info));
        std::process::abort();
    }));
}

/// The log line of a panic: the thread, the panic's message and its place in the source.
fn report(thread: Option<&str>, info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let place =
        info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
    format!(
        "thread `{}` panicked{place}: {}; the daemon stops (a service manager restarts it)",
        thread.unwrap_or("unnamed"),
        message.escape_debug()
    )
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Set in the child process this test runs: which part of a daemon panics there.
    const CHILD: &str = "KEYSTEWARD_TEST_SUPERVISE_CHILD";

    /// The child: a stand-in daemon with the hook installed, a data-plane thread or a tokio
    /// task that panics, and a main thread that would go on for three seconds (and exit 0)
    /// if the panic left it alive.
    fn child(part: &str) -> ! {
        let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).try_init();
        super::install();
        if part == "thread" {
            let thread = std::thread::Builder::new().name("esp-seal".into());
            let _ = thread.spawn(|| panic!("poll: {}", "the poll set is broken")).map(|t| t.join());
        } else {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let _ = tokio::spawn(async { panic!("a UDP 500 reader failed") }).await;
            });
        }
        std::thread::sleep(Duration::from_secs(3));
        std::process::exit(0)
    }

    /// Issue 13, finding 12: a panic in a thread or a task of the daemon ended that thread
    /// alone and left the process half alive. Now the process ends at once, not with 0, and
    /// its log names the thread and the reason.
    #[test]
    fn a_panic_in_any_thread_or_task_ends_the_process_with_the_thread_and_reason() {
        if let Ok(part) = std::env::var(CHILD) {
            child(&part);
        }
        let name = "daemon::supervise::tests::a_panic_in_any_thread_or_task_ends_the_process_with_the_thread_and_reason";
        for (part, thread, reason) in [
            ("thread", "thread `esp-seal` panicked", "poll: the poll set is broken"),
            ("task", "panicked", "a UDP 500 reader failed"),
        ] {
            let start = Instant::now();
            let out = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", name, "--nocapture", "--test-threads=1"])
                .env(CHILD, part)
                .output()
                .unwrap();
            let elapsed = start.elapsed();
            let log = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{part}: the process ended with {:?}\n{log}", out.status);
            assert!(elapsed < Duration::from_secs(2), "{part}: ended after {elapsed:?}");
            assert!(log.contains(thread) && log.contains(reason), "{part}: the log names it\n{log}");
            assert!(log.contains("the daemon stops"), "{part}\n{log}");
        }
    }
}
