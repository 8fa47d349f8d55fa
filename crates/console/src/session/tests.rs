use std::cell::RefCell;
use std::rc::Rc;

use super::*;

/// A daemon that records what it is asked and answers `display current-configuration` with
/// the last sysname it was sent.
#[derive(Clone, Default)]
struct Fake {
    asked: Rc<RefCell<Vec<Request>>>,
    refuse: Option<&'static str>,
}

impl Daemon for Fake {
    fn call(&mut self, request: &Request) -> Result<Response, String> {
        self.asked.borrow_mut().push(request.clone());
        let sysname = self.asked.borrow().iter().rev().find_map(|r| match r {
            Request::Configure { line, .. } => line.strip_prefix("sysname ").map(str::to_string),
            _ => None,
        });
        let ok = |text: &str| Response::Ok { text: text.to_string(), json: serde_json::Value::Null };
        Ok(match request {
            Request::Configure { line, .. } if Some(line.as_str()) == self.refuse => {
                Response::Error("Error: refused".into())
            }
            Request::DisplayCurrentConfiguration => ok(&format!(
                "#\nsysname {}\n#\nike peer b\n remote-address 1.2.3.4\n#\nreturn\n",
                sysname.unwrap_or("FW_A".into())
            )),
            Request::Save => ok("Info: Save the configuration successfully."),
            _ => ok(""),
        })
    }
}

fn session() -> (Session<Fake>, Rc<RefCell<Vec<Request>>>) {
    let fake = Fake::default();
    let asked = fake.asked.clone();
    (Session::new(fake).unwrap(), asked)
}

fn configure(views: &[&str], line: &str) -> Request {
    Request::Configure { views: views.iter().map(|v| (*v).to_string()).collect(), line: line.into() }
}

#[test]
fn views_and_prompts_follow_the_lines_as_on_the_device() {
    let (mut s, asked) = session();
    assert_eq!(s.prompt(), "<FW_A>");
    assert_eq!(s.line("sys"), Outcome::Done);
    assert_eq!(s.prompt(), "[FW_A]");
    assert_eq!(s.line("ike pro 10"), Outcome::Text(String::new()));
    assert_eq!(s.prompt(), "[FW_A-ike-proposal-10]");
    s.line("enc aes-256");
    s.line("ike pe b");
    assert_eq!(s.prompt(), "[FW_A-ike-peer-b]");
    s.line("pre Admin@123");
    s.line("quit");
    assert_eq!(s.prompt(), "[FW_A]");
    s.line("acl num 3001");
    assert_eq!(s.prompt(), "[FW_A-acl-adv-3001]");
    s.line("ipsec policy policy1 1 isa");
    assert_eq!(s.prompt(), "[FW_A-ipsec-policy-isakmp-policy1-1]");
    s.line("int GigabitEthernet0/0/2");
    assert_eq!(s.prompt(), "[FW_A-GigabitEthernet0/0/2]");
    s.line("return");
    assert_eq!(s.prompt(), "<FW_A>");
    s.line("system-view");
    s.line("ike peer b");
    s.ctrl_z();
    assert_eq!(s.prompt(), "<FW_A>");
    let sent: Vec<Request> =
        asked.borrow().iter().filter(|r| matches!(r, Request::Configure { .. })).cloned().collect();
    assert_eq!(
        sent,
        [
            configure(&[], "ike proposal 10"),
            configure(&["ike proposal 10"], "encryption-algorithm aes-256"),
            configure(&[], "ike peer b"),
            configure(&["ike peer b"], "pre-shared-key Admin@123"),
            configure(&[], "acl number 3001"),
            configure(&[], "ipsec policy policy1 1 isakmp"),
            configure(&[], "interface GigabitEthernet0/0/2"),
            configure(&[], "ike peer b"),
        ]
    );
    assert_eq!(s.line("quit"), Outcome::Exit);
}

#[test]
fn quit_leaves_one_view_at_a_time() {
    let (mut s, _) = session();
    s.line("system-view");
    s.line("ike peer b");
    s.line("q");
    assert_eq!(s.prompt(), "[FW_A]");
    s.line("quit");
    assert_eq!(s.prompt(), "<FW_A>");
}

#[test]
fn sysname_changes_the_prompt() {
    let (mut s, _) = session();
    s.line("system-view");
    s.line("sysname FW_B");
    assert_eq!(s.prompt(), "[FW_B]");
}

#[test]
fn errors_carry_the_caret_position() {
    let (mut s, asked) = session();
    let count = asked.borrow().len();
    assert_eq!(
        s.line("dsp ike sa"),
        Outcome::Caret {
            offset: 0,
            message: "Error: Unrecognized command found at '^' position.",
            detail: None
        }
    );
    assert!(matches!(s.line("display ike xx"), Outcome::Caret { offset: 12, .. }));
    assert!(matches!(
        s.line("dis ike"),
        Outcome::Caret { offset: 8, message: "Error: Incomplete command found at '^' position.", .. }
    ));
    s.line("sys");
    assert!(matches!(s.line("ike peeer b"), Outcome::Caret { offset: 4, .. }));
    // `d` is `dpd` or `display` here: nothing is sent.
    s.line("ike peer b");
    let count = count + 1;
    assert!(matches!(
        s.line("d"),
        Outcome::Caret { offset: 0, message: "Error: Ambiguous command found at '^' position.", .. }
    ));
    match s.line("ike peer c v2") {
        Outcome::Caret { offset: 11, detail: Some(detail), .. } => {
            assert!(detail.starts_with("Info: unsupported"), "{detail}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(asked.borrow().len(), count);
}

#[test]
fn a_refused_change_keeps_the_view() {
    let fake = Fake { refuse: Some("ike peer x"), ..Fake::default() };
    let mut s = Session::new(fake).unwrap();
    s.line("sys");
    assert_eq!(s.line("ike peer x"), Outcome::Error("Error: refused".into()));
    assert_eq!(s.prompt(), "[FW_A]");
}

#[test]
fn displays_work_in_every_view_and_filter() {
    let (mut s, asked) = session();
    assert_eq!(s.line("dis ike sa"), Outcome::Text(String::new()));
    assert_eq!(asked.borrow().last(), Some(&Request::DisplayIkeSa));
    s.line("sys");
    s.line("ike peer b");
    assert_eq!(s.line("dis ipsec sa br"), Outcome::Text(String::new()));
    assert_eq!(asked.borrow().last(), Some(&Request::DisplayIpsecSaBrief));
    assert_eq!(s.line("dis ip rou"), Outcome::Text(String::new()));
    assert_eq!(asked.borrow().last(), Some(&Request::DisplayIpRoutingTable));
    assert_eq!(s.line("dis ipsec sa br"), Outcome::Text(String::new()));
    assert_eq!(asked.borrow().last(), Some(&Request::DisplayIpsecSaBrief));
    s.line("dis this");
    assert_eq!(asked.borrow().last(), Some(&Request::DisplayThis { views: vec!["ike peer b".into()] }));
    assert_eq!(s.line("dis cur | inc remote"), Outcome::Text(" remote-address 1.2.3.4\n".into()));
    assert_eq!(s.line("display current-configuration | count"), Outcome::Text("Total lines: 7.\n".into()));
    assert_eq!(
        s.line("dis cur | begin ^ike"),
        Outcome::Text("ike peer b\n remote-address 1.2.3.4\n#\nreturn\n".into())
    );
    assert!(matches!(s.line("dis cur | grep x"), Outcome::Caret { offset: 10, .. }));
    s.line("return");
    assert_eq!(s.line("reset ike sa conn-id 3"), Outcome::Text(String::new()));
    assert_eq!(asked.borrow().last(), Some(&Request::ResetIkeSa { conn_id: Some(3) }));
    s.line("debug ike");
    assert_eq!(asked.borrow().last(), Some(&Request::DebuggingIke { on: true }));
    s.line("undo debug ike");
    assert_eq!(asked.borrow().last(), Some(&Request::DebuggingIke { on: false }));
    s.line("reset ike stat");
    assert_eq!(asked.borrow().last(), Some(&Request::ResetIkeStatistics));
    s.line("reset ipsec stat");
    assert_eq!(asked.borrow().last(), Some(&Request::ResetIpsecStatistics));
    s.line("reset ipsec sa remote 192.0.2.2 policy policy1 1");
    assert_eq!(
        asked.borrow().last(),
        Some(&Request::ResetIpsecSa {
            remote: Some("192.0.2.2".parse().unwrap()),
            policy: Some(("policy1".into(), 1))
        })
    );
}

#[test]
fn save_asks_first() {
    let (mut s, asked) = session();
    assert_eq!(s.line("save"), Outcome::ConfirmSave);
    assert_eq!(s.confirm_save("n"), Outcome::Done);
    assert!(!asked.borrow().contains(&Request::Save));
    assert_eq!(s.confirm_save("Y"), Outcome::Text("Info: Save the configuration successfully.".into()));
    assert_eq!(asked.borrow().last(), Some(&Request::Save));
}

#[test]
fn question_mark_and_tab() {
    let (mut s, _) = session();
    let words = |n: NextWords| n.words.into_iter().map(|h| h.word).collect::<Vec<_>>();
    assert_eq!(
        words(s.next_words("")),
        ["debugging", "display", "quit", "reset", "return", "save", "screen-length", "system-view", "undo"]
    );
    assert_eq!(words(s.next_words("dis")), ["display"]);
    assert!(words(s.next_words("display ")).contains(&"current-configuration".to_string()));
    let sa = s.next_words("display ike sa ");
    assert!(sa.can_end && words(sa).contains(&"|".to_string()));
    assert_eq!(words(s.next_words("display ike sa | ")), ["begin", "count", "exclude", "include"]);
    assert_eq!(s.completions("sys"), ["system-view"]);
    s.line("system-view");
    let system = words(s.next_words(""));
    assert!(system.contains(&"ike".to_string()) && system.contains(&"display".to_string()), "{system:?}");
    assert!(!system.contains(&"system-view".to_string()));
    assert_eq!(s.completions("ipsec pro"), ["proposal"]);
    assert_eq!(s.completions("dis"), ["display"]);
    let help = format_help(&s.next_words("ike proposal "));
    assert!(help.starts_with("  INTEGER<1-1024>"), "{help}");
    match s.line("ike ?") {
        Outcome::Text(text) => {
            assert!(text.contains("  peer                    Specify an IKE peer\n"), "{text}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_language_decides_its_own_abbreviations() {
    let (mut s, asked) = session();
    s.line("sys");
    s.line("ipsec policy policy1 1 isakmp");
    // `sec` is `security` here; the system view's `security-policy` does not make it ambiguous.
    assert_eq!(s.line("sec acl 3001"), Outcome::Text(String::new()));
    assert_eq!(
        asked.borrow().last(),
        Some(&configure(&["ipsec policy policy1 1 isakmp"], "security acl 3001"))
    );
    // `sa` is the policy's `sa`, not `save`; `sav` is `save`.
    assert!(matches!(s.line("sa duration time-based 3600"), Outcome::Text(_)));
    assert_eq!(s.line("sav"), Outcome::ConfirmSave);
}

/// A daemon that gives `display ike sa` only in pages of one line (as a hub with more SAs
/// than one answer may hold), and refuses it whole.
struct Paged {
    asked: Rc<RefCell<Vec<Request>>>,
}

impl Daemon for Paged {
    fn call(&mut self, request: &Request) -> Result<Response, String> {
        self.asked.borrow_mut().push(request.clone());
        Ok(match request {
            Request::Page { display, after, .. } if **display == Request::DisplayIkeSa => {
                let at: usize = after.as_deref().map_or(0, |a| a.parse().unwrap());
                let next = (at < 2).then(|| (at + 1).to_string());
                control::Page { text: format!("line {at}\n"), json: serde_json::json!([at]), next }
                    .into_response()
            }
            Request::DisplayIkeSa => Response::Error("Error: the answer would be too long".into()),
            _ => Response::Ok { text: "sysname FW_A\n".into(), json: serde_json::Value::Null },
        })
    }
}

#[test]
fn displays_that_grow_with_the_sas_are_read_page_by_page() {
    let asked = Rc::new(RefCell::new(Vec::new()));
    let mut s = Session::new(Paged { asked: asked.clone() }).unwrap();
    assert_eq!(s.line("dis ike sa"), Outcome::Text("line 0\nline 1\nline 2\n".into()));
    assert_eq!(s.line("dis ike sa | count"), Outcome::Text(control::pager::count_line(3)));
    let pages = asked.borrow().iter().filter(|r| matches!(r, Request::Page { .. })).count();
    assert_eq!(pages, 6, "three pages a display");
    assert!(!asked.borrow().contains(&Request::DisplayIkeSa), "never asked whole");
}

/// An output that stops after `limit` writes, as `q` at `---- More ----` does.
struct Stops {
    text: String,
    writes: usize,
    limit: usize,
}

impl Output for Stops {
    fn show(&mut self, text: &str) -> bool {
        self.text.push_str(text);
        self.writes += 1;
        self.writes < self.limit
    }
}

fn pages_asked(asked: &Rc<RefCell<Vec<Request>>>) -> usize {
    asked.borrow().iter().filter(|r| matches!(r, Request::Page { .. })).count()
}

/// Pages are written as they arrive; once the output stops, no further page is asked for.
#[test]
fn a_stopped_display_asks_for_no_more_pages() {
    let asked = Rc::new(RefCell::new(Vec::new()));
    let mut s = Session::new(Paged { asked: asked.clone() }).unwrap();
    let mut out = Stops { text: String::new(), writes: 0, limit: 1 };
    assert_eq!(s.line_to("dis ike sa", &mut out), Outcome::Shown);
    assert_eq!((out.text.as_str(), pages_asked(&asked)), ("line 0\n", 1));
    // Filtered first: pages whose lines the filter drops write nothing, and do not count
    // against the reader; the first line kept is the one it sees.
    let mut out = Stops { text: String::new(), writes: 0, limit: 1 };
    assert_eq!(s.line_to("dis ike sa | inc 1$", &mut out), Outcome::Shown);
    assert_eq!((out.text.as_str(), pages_asked(&asked)), ("line 1\n", 3));
    // `| count` reads every page and writes one line.
    let mut out = Stops { text: String::new(), writes: 0, limit: 1 };
    assert_eq!(s.line_to("dis ike sa | count", &mut out), Outcome::Shown);
    assert_eq!((out.text.as_str(), out.writes, pages_asked(&asked)), ("Total lines: 3.\n", 1, 6));
}

#[test]
fn screen_length_is_the_sessions() {
    let (mut s, asked) = session();
    let before = asked.borrow().len();
    assert_eq!(s.screen_length(), None);
    assert_eq!(s.line("screen-length 0 temporary"), Outcome::Done);
    assert_eq!(s.screen_length(), Some(0));
    assert_eq!(s.line("scr 40 temp"), Outcome::Done);
    assert_eq!(s.screen_length(), Some(40));
    assert_eq!(s.line("undo screen-length temporary"), Outcome::Done);
    assert_eq!(s.screen_length(), None);
    // The daemon is not told: the screen is the session's.
    assert_eq!(asked.borrow().len(), before);
    assert!(matches!(s.line("screen-length 513 temporary"), Outcome::Caret { offset: 14, .. }));
    assert!(matches!(s.line("screen-length 10"), Outcome::Caret { .. }));
    let help = format_help(&s.next_words("screen-length "));
    assert!(help.starts_with("  INTEGER<0-512>"), "{help}");
    assert_eq!(
        format_help(&s.next_words("screen-length 0 ")),
        "  temporary               For this session only\n"
    );
    // Not in the system view (a user-view command, as on VRP).
    s.line("system-view");
    assert!(matches!(s.line("screen-length 0 temporary"), Outcome::Caret { .. }));
    assert_eq!(s.screen_length(), None);
}
