//! `keysteward demo` (root): the README's first command brings the reference scenario up in
//! namespaces, pings through the tunnel, shows the SAs, and leaves nothing behind.

use std::process::Command;

#[test]
fn netns_demo_pings_through_the_tunnel_and_cleans_up() {
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false);
    if !root {
        eprintln!("skipped: needs root for network namespaces (CI runs it as root)");
        return;
    }
    let child = Command::new(env!("CARGO_BIN_EXE_keysteward"))
        .arg("demo")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("demo starts");
    let tag = format!("ksd{}", child.id());
    let out = child.wait_with_output().expect("demo ends");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{text}");
    let received: usize = text
        .split(" received,")
        .next()
        .and_then(|head| head.rsplit(", ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(received >= 4, "at most the first ping may be lost:\n{text}");
    assert!(text.contains("RD|ST         v1:2  public"), "{text}");
    assert!(text.contains("RD|ST         v1:1  public"), "{text}");
    assert_eq!(text.matches("ESP       E:DES;A:HMAC-MD5-96;").count(), 2, "{text}");
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&namespaces.stdout).contains(&tag), "the demo removed its namespaces");
}
