//! The systemd notification protocol (`sd_notify(3)`), the part the daemon uses: `READY=1`
//! once its sockets, TUN device and routes are up, `WATCHDOG=1` from the engine loop, and
//! `STOPPING=1`. A datagram to the unix socket named by `NOTIFY_SOCKET`, a path or, when it
//! starts with `@`, an abstract name. Without `NOTIFY_SOCKET` (not under systemd) nothing is
//! sent.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, from the environment at start.
#[derive(Debug, Clone)]
pub struct Notifier {
    address: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (the watchdog is ours only
    /// when `WATCHDOG_PID` is unset or names this process).
    pub fn from_env() -> Self {
        let address = std::env::var("NOTIFY_SOCKET").ok().filter(|a| !a.is_empty());
        let for_us = std::env::var("WATCHDOG_PID")
            .map_or(true, |pid| pid.trim().parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|&usec| usec > 0 && for_us)
            .map(Duration::from_micros);
        Self { address, watchdog }
    }

    /// How often to send `WATCHDOG=1`: half the watchdog timeout, as `sd_watchdog_enabled(3)`
    /// recommends; `None` when systemd watches nothing.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| (timeout / 2).max(Duration::from_millis(1)))
    }

    /// The watchdog's clock: ticks every [`Self::watchdog_interval`], never without a watchdog.
    pub fn watchdog(&self) -> Watchdog {
        Watchdog(self.watchdog_interval().map(tokio::time::interval))
    }

    /// Sends `state` (`READY=1`, …); without `NOTIFY_SOCKET` there is nobody to tell.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        match &self.address {
            Some(address) => send(address, state),
            None => Ok(()),
        }
    }
}

/// When to send the next `WATCHDOG=1` ([`Notifier::watchdog`]).
#[derive(Debug)]
pub struct Watchdog(Option<tokio::time::Interval>);

impl Watchdog {
    /// Waits for the next tick; for ever without a watchdog.
    pub async fn tick(&mut self) {
        match &mut self.0 {
            Some(interval) => {
                interval.tick().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// Sends one notification datagram to `address` (a path, or `@name` for an abstract socket).
pub fn send(address: &str, state: &str) -> io::Result<()> {
    let to = match address.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(address)?,
    };
    let socket = UnixDatagram::unbound()?;
    let sent = socket.send_to_addr(state.as_bytes(), &to)?;
    if sent == state.len() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::WriteZero, "notification cut short"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// A path socket and an abstract one (`@name`) both get the state, byte for byte.
    #[test]
    fn notifications_reach_path_and_abstract_sockets() {
        let dir = std::env::temp_dir().join(format!("ks-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1").unwrap();
        assert_eq!(receive(&listener), "READY=1");

        let name = format!("keysteward-notify-test-{}", std::process::id());
        let abstract_listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        send(&format!("@{name}"), "WATCHDOG=1").unwrap();
        assert_eq!(receive(&abstract_listener), "WATCHDOG=1");

        // Nobody listening is an error the caller can log, not a silent success.
        assert!(send(dir.join("absent.sock").to_str().unwrap(), "READY=1").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Half the watchdog timeout; none without WATCHDOG_USEC or when it is another process's.
    #[test]
    fn the_watchdog_interval_is_half_the_timeout() {
        let notifier = Notifier { address: None, watchdog: Some(Duration::from_secs(30)) };
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(15)));
        let none = Notifier { address: None, watchdog: None };
        assert_eq!(none.watchdog_interval(), None);
        assert!(none.notify("READY=1").is_ok(), "not under systemd: nothing to send");
    }
}
