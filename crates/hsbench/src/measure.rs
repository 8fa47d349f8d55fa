//! What the responder process spent: CPU time per thread and in all, resident memory.

use std::time::{Duration, Instant};

/// The responder process, read through `/proc`.
pub(crate) struct Responder {
    pid: u32,
}

/// One reading of the responder.
#[derive(Clone)]
pub(crate) struct Sample {
    pub(crate) wall: Instant,
    /// CPU time of all its threads, nanoseconds (`/proc/PID/task/*/schedstat`).
    pub(crate) cpu_ns: u64,
    /// utime + stime of the process, clock ticks (`/proc/PID/stat`).
    pub(crate) ticks: u64,
    pub(crate) rss_kib: u64,
    /// (thread name, CPU nanoseconds) per thread.
    threads: Vec<(u32, String, u64)>,
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// Clock ticks per second of `/proc/PID/stat`.
pub(crate) fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// This process's own CPU time (user + system).
pub(crate) fn own_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage filled it.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

impl Responder {
    pub(crate) fn new(pid: u32) -> Result<Self, String> {
        read(&format!("/proc/{pid}/stat"))?;
        Ok(Self { pid })
    }

    pub(crate) fn sample(&self) -> Result<Sample, String> {
        let pid = self.pid;
        let stat = read(&format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces) in parentheses.
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ")".
        let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        let ticks = tick(11) + tick(12);
        let status = read(&format!("/proc/{pid}/status"))?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut threads = Vec::new();
        let tasks =
            std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| format!("/proc/{pid}/task: {e}"))?;
        for task in tasks.flatten() {
            let name = task.file_name().to_string_lossy().into_owned();
            let Ok(tid) = name.parse::<u32>() else { continue };
            let Ok(schedstat) = read(&format!("/proc/{pid}/task/{tid}/schedstat")) else { continue };
            let ns = schedstat.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
            let comm = read(&format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
            threads.push((tid, comm.trim().to_owned(), ns));
        }
        let cpu_ns = threads.iter().map(|t| t.2).sum();
        Ok(Sample { wall: Instant::now(), cpu_ns, ticks, rss_kib, threads })
    }

    /// The CPU each responder thread spent since `first`, per SA, and the whole against the
    /// crypto `floor`.
    pub(crate) fn print_threads(&self, first: &Sample, sas: usize, floor: Duration) -> Result<(), String> {
        let now = self.sample()?;
        let per_sa = now.cpu_ns.saturating_sub(first.cpu_ns) as f64 / sas.max(1) as f64;
        println!(
            "  responder CPU per SA over the run / crypto floor: {:.2}",
            per_sa / floor.as_nanos().max(1) as f64
        );
        for (tid, name, ns) in &now.threads {
            let before = first.threads.iter().find(|t| t.0 == *tid).map_or(0, |t| t.2);
            let spent = ns.saturating_sub(before);
            if spent > 0 {
                println!(
                    "  responder thread {tid} ({name}): {:.1} ms, {:.1} µs per SA",
                    spent as f64 / 1e6,
                    spent as f64 / 1e3 / sas.max(1) as f64
                );
            }
        }
        Ok(())
    }
}

/// CPU time this thread has consumed.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The crypto floor of one side of main mode PSK + quick mode without PFS, as the engine
/// bench measures it (crates/ike/benches/handshakes.rs): one DH key generation, one shared
/// secret and 20 HMACs over 300 bytes with a fresh key, in this thread's CPU time.
pub(crate) fn crypto_floor(group: crypto::DhGroup, iterations: u32) -> Result<Duration, String> {
    use crypto::{DhPrivate, HashAlgorithm, HashFunction};
    let mut rng = crypto::OsRandom;
    let peer = DhPrivate::generate(group, &mut rng).map_err(|e| e.to_string())?;
    let message = [0x5au8; 300];
    let start = thread_cpu();
    for _ in 0..iterations {
        let ours = DhPrivate::generate(group, &mut rng).map_err(|e| e.to_string())?;
        let shared =
            ours.shared_secret(std::hint::black_box(peer.public_value())).map_err(|e| e.to_string())?;
        let mut key = HashAlgorithm::Sha256.hmac(shared.expose(), &[&message]);
        for _ in 0..19 {
            key = HashAlgorithm::Sha256.hmac(key.as_ref(), &[&message]);
        }
        std::hint::black_box(key);
    }
    Ok((thread_cpu() - start) / iterations.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The readings of a live process (this one) are there and move with the work it does.
    #[test]
    fn a_process_reads_back_its_cpu_and_memory() {
        let me = Responder::new(std::process::id()).expect("this process");
        let before = me.sample().expect("a sample");
        let floor = crypto_floor(crypto::DhGroup::Ecp256, 200).expect("the floor");
        let after = me.sample().expect("a sample");
        assert!(floor > Duration::ZERO);
        assert!(after.cpu_ns > before.cpu_ns, "{} then {}", before.cpu_ns, after.cpu_ns);
        assert!(after.rss_kib > 0 && !after.threads.is_empty());
        assert!(Responder::new(u32::MAX).is_err(), "no such process");
    }
}
