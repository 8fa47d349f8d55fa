//! The console's own commands, which are not configuration: `display …` (in every view),
//! `reset …`, `save`, `system-view`, `quit`, `return`. A small grammar of its own, read with
//! the same rules as the configuration language (shortest unique prefix, `?`, caret errors),
//! mapped onto control requests.

use std::net::IpAddr;

use control::Request;
use vrp::console::{expand, ErrorKind, Help, LineError, NextWords};

/// One word of a console command.
#[derive(Clone, Copy)]
pub(crate) struct Node {
    word: Word,
    help: &'static str,
    /// The command may end after this word.
    end: bool,
    next: &'static [Node],
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    Key(&'static str),
    Address,
    Number(u64, u64),
    Name,
}

const fn key(word: &'static str, help: &'static str, end: bool, next: &'static [Node]) -> Node {
    Node { word: Word::Key(word), help, end, next }
}

const fn arg(word: Word, help: &'static str, end: bool, next: &'static [Node]) -> Node {
    Node { word, help, end, next }
}

const CONN_ID: &[Node] = &[key(
    "conn-id",
    "Specify a connection ID",
    false,
    &[arg(Word::Number(1, u32::MAX as u64), "Connection ID", true, &[])],
)];
const VERBOSE: &[Node] = &[
    key("remote", "Specify the peer's address", false, &[arg(Word::Address, "Peer address", true, CONN_ID)]),
    CONN_ID[0],
];
const BRIEF_OR_NAME: &[Node] = &[
    key("brief", "Brief information", true, &[]),
    key("name", "Specify a name", false, &[arg(Word::Name, "Name", true, &[])]),
];
const DISPLAY: &[Node] = &[
    key(
        "ike",
        "IKE information",
        false,
        &[
            key(
                "sa",
                "IKE security associations",
                true,
                &[key("verbose", "Detailed information", true, VERBOSE)],
            ),
            key("error-info", "IKE negotiation failures", true, &[]),
            key("statistics", "IKE statistics", true, &[]),
            key("proposal", "IKE proposals", true, &[]),
            key("peer", "IKE peers", true, BRIEF_OR_NAME),
        ],
    ),
    key(
        "ipsec",
        "IPsec information",
        false,
        &[
            key(
                "sa",
                "IPsec security associations",
                true,
                &[
                    key("brief", "Brief information", true, &[]),
                    key(
                        "remote",
                        "Specify the peer's address",
                        false,
                        &[arg(Word::Address, "Peer address", true, &[])],
                    ),
                ],
            ),
            key("proposal", "IPsec proposals", true, BRIEF_OR_NAME),
            key(
                "policy",
                "IPsec policies",
                true,
                &[key("name", "Specify a name", false, &[arg(Word::Name, "Policy name", true, &[])])],
            ),
            key("statistics", "IPsec statistics", true, &[]),
        ],
    ),
    key(
        "firewall",
        "Firewall information",
        false,
        &[key(
            "session",
            "Sessions",
            false,
            &[key("table", "The session table", true, &[key("verbose", "Detailed information", true, &[])])],
        )],
    ),
    key(
        "ip",
        "IP information",
        false,
        &[key("routing-table", "The static routes keysteward installed", true, &[])],
    ),
    key("this", "The configuration of the current view", true, &[]),
    key("current-configuration", "The running configuration", true, &[]),
    key("saved-configuration", "The saved configuration", true, &[]),
];
const POLICY: Node = key(
    "policy",
    "Specify an IPsec policy",
    false,
    &[arg(Word::Name, "Policy name", false, &[arg(Word::Number(1, 10_000), "Sequence number", true, &[])])],
);
const RESET: &[Node] = &[
    key(
        "ike",
        "IKE",
        false,
        &[
            key("sa", "Delete IKE security associations", true, CONN_ID),
            key("statistics", "Start the IKE statistics from zero", true, &[]),
        ],
    ),
    key(
        "ipsec",
        "IPsec",
        false,
        &[
            key(
                "sa",
                "Delete IPsec security associations",
                true,
                &[
                    key(
                        "remote",
                        "Specify the peer's address",
                        false,
                        &[arg(Word::Address, "Peer address", true, &[POLICY])],
                    ),
                    POLICY,
                ],
            ),
            key("statistics", "Start the IPsec statistics from zero", true, &[]),
        ],
    ),
];
const DEBUGGING: &[Node] = &[key("ike", "IKE negotiation details in the daemon's log", true, &[])];

const TEMPORARY: &[Node] = &[key("temporary", "For this session only", true, &[])];
const SCREEN_LENGTH: Node = key(
    "screen-length",
    "Set the number of lines on a screen",
    false,
    &[arg(Word::Number(0, 512), "Lines on a screen (0: no ---- More ----)", false, TEMPORARY)],
);

const DISPLAY_NODE: Node = key("display", "Display information", false, DISPLAY);
const SAVE: Node = key("save", "Save the running configuration", true, &[]);

/// The user view's commands.
pub(crate) const USER_VIEW: &[Node] = &[
    key("debugging", "Enable debugging", false, DEBUGGING),
    DISPLAY_NODE,
    key("quit", "Exit from the current view", true, &[]),
    key("reset", "Reset operation", false, RESET),
    key("return", "Return to the user view", true, &[]),
    SAVE,
    SCREEN_LENGTH,
    key("system-view", "Enter the system view", true, &[]),
    key(
        "undo",
        "Cancel the current setting",
        false,
        &[
            key("debugging", "Disable debugging", false, DEBUGGING),
            key("screen-length", "Restore the number of lines on a screen", false, TEMPORARY),
        ],
    ),
];

/// The console commands of the configuration views (the others are the language's).
pub(crate) const CONFIG_VIEWS: &[Node] = &[DISPLAY_NODE, SAVE];

/// The first words of `nodes`.
pub(crate) fn first_words(nodes: &[Node]) -> Vec<&'static str> {
    nodes.iter().filter_map(|n| if let Word::Key(k) = n.word { Some(k) } else { None }).collect()
}

/// A console command read from its words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A request to the daemon (`display this` is completed with the views by the caller).
    Ask(Request),
    /// `display this`.
    DisplayThis,
    /// `save`: asks for confirmation first.
    Save,
    /// `system-view`.
    SystemView,
    /// `quit`.
    Quit,
    /// `return`.
    Return,
    /// `screen-length N temporary` (`Some(N)`; 0: no paging) and `undo screen-length
    /// temporary` (`None`: the terminal's height again).
    ScreenLength(Option<u16>),
}

/// Reads the words of a console command. `words` are `(offset in the line, text)`.
pub(crate) fn read(
    nodes: &'static [Node],
    words: &[(usize, String)],
    end: usize,
) -> Result<Action, LineError> {
    let mut canonical: Vec<String> = Vec::new();
    let mut current = nodes;
    let mut last: Option<&Node> = None;
    for (offset, text) in words {
        let node =
            step(current, text).map_err(|kind| LineError { offset: *offset, kind, detail: String::new() })?;
        canonical.push(match node.word {
            Word::Key(k) => k.to_string(),
            _ => text.clone(),
        });
        current = node.next;
        last = Some(node);
    }
    match last {
        Some(node) if node.end => action(&canonical).ok_or(LineError {
            offset: 0,
            kind: ErrorKind::Unrecognized,
            detail: String::new(),
        }),
        _ => Err(LineError { offset: end, kind: ErrorKind::Incomplete, detail: String::new() }),
    }
}

/// The node `text` reads as among `nodes`: a keyword it abbreviates, else an argument of
/// the right form.
fn step(nodes: &'static [Node], text: &str) -> Result<&'static Node, ErrorKind> {
    let keys = first_words(nodes);
    match expand(text, &keys) {
        Ok(k) => return Ok(nodes.iter().find(|n| n.word == Word::Key(k)).unwrap_or(&nodes[0])),
        Err(list) if list.len() > 1 => return Err(ErrorKind::Ambiguous),
        Err(_) => {}
    }
    let mut arguments = nodes.iter().filter(|n| !matches!(n.word, Word::Key(_))).peekable();
    if arguments.peek().is_none() {
        return Err(ErrorKind::Unrecognized);
    }
    arguments.find(|n| fits(n.word, text)).ok_or(ErrorKind::WrongParameter)
}

fn fits(word: Word, text: &str) -> bool {
    match word {
        Word::Key(_) => false,
        Word::Address => text.parse::<IpAddr>().is_ok(),
        Word::Number(min, max) => text.parse::<u64>().is_ok_and(|n| (min..=max).contains(&n)),
        Word::Name => !text.is_empty() && text.chars().count() <= 64,
    }
}

/// What may follow `words` (`partial`: the word being typed, for `dis?`).
pub(crate) fn next_words(
    nodes: &'static [Node],
    words: &[String],
    partial: Option<&str>,
) -> Option<NextWords> {
    let mut current = nodes;
    let mut can_end = false;
    for text in words {
        let node = step(current, text).ok()?;
        current = node.next;
        can_end = node.end;
    }
    let words = current
        .iter()
        .filter(|n| match (partial, n.word) {
            (None, _) => true,
            (Some(p), Word::Key(k)) => k.starts_with(&p.to_ascii_lowercase()),
            (Some(_), _) => false,
        })
        .map(|n| Help {
            word: match n.word {
                Word::Key(k) => k.to_string(),
                Word::Address => "X.X.X.X".to_string(),
                Word::Number(min, max) => format!("INTEGER<{min}-{max}>"),
                Word::Name => "STRING<1-64>".to_string(),
            },
            description: n.help.to_string(),
            keyword: matches!(n.word, Word::Key(_)),
        })
        .collect();
    Some(NextWords { words, can_end: can_end && partial.is_none() })
}

/// The action of a complete command, by its canonical words.
fn action(words: &[String]) -> Option<Action> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let after =
        |key: &str| w.iter().position(|x| *x == key).and_then(|i| w.get(i + 1)).map(|s| (*s).to_string());
    let ip = |key: &str| after(key).and_then(|s| s.parse::<IpAddr>().ok());
    let number = |key: &str| after(key).and_then(|s| s.parse::<u64>().ok());
    let ask = |r: Request| Some(Action::Ask(r));
    match w.as_slice() {
        ["quit"] => Some(Action::Quit),
        ["return"] => Some(Action::Return),
        ["save"] => Some(Action::Save),
        ["system-view"] => Some(Action::SystemView),
        ["screen-length", lines, "temporary"] => lines.parse().ok().map(|n| Action::ScreenLength(Some(n))),
        ["undo", "screen-length", "temporary"] => Some(Action::ScreenLength(None)),
        ["display", "this"] => Some(Action::DisplayThis),
        ["display", "current-configuration"] => ask(Request::DisplayCurrentConfiguration),
        ["display", "saved-configuration"] => ask(Request::DisplaySavedConfiguration),
        ["display", "ike", "sa"] => ask(Request::DisplayIkeSa),
        ["display", "ip", "routing-table"] => ask(Request::DisplayIpRoutingTable),
        ["display", "ike", "sa", "verbose", ..] => {
            ask(Request::DisplayIkeSaVerbose { remote: ip("remote"), conn_id: number("conn-id") })
        }
        ["display", "ike", "error-info"] => ask(Request::DisplayIkeErrorInfo),
        ["display", "ike", "statistics"] => ask(Request::DisplayIkeStatistics),
        ["display", "ike", "proposal"] => ask(Request::DisplayIkeProposal),
        ["display", "ike", "peer", ..] => ask(Request::DisplayIkePeer { name: after("name") }),
        ["display", "ipsec", "sa", "brief"] => ask(Request::DisplayIpsecSaBrief),
        ["display", "ipsec", "sa", ..] => ask(Request::DisplayIpsecSa { remote: ip("remote") }),
        ["display", "ipsec", "proposal", rest @ ..] => {
            ask(Request::DisplayIpsecProposal { name: after("name"), brief: rest == ["brief"] })
        }
        ["display", "ipsec", "policy", ..] => ask(Request::DisplayIpsecPolicy { name: after("name") }),
        ["display", "ipsec", "statistics"] => ask(Request::DisplayIpsecStatistics),
        ["display", "firewall", "session", "table", rest @ ..] => {
            ask(Request::DisplayFirewallSessionTable { verbose: rest == ["verbose"] })
        }
        ["debugging", "ike"] => ask(Request::DebuggingIke { on: true }),
        ["undo", "debugging", "ike"] => ask(Request::DebuggingIke { on: false }),
        ["reset", "ike", "statistics"] => ask(Request::ResetIkeStatistics),
        ["reset", "ipsec", "statistics"] => ask(Request::ResetIpsecStatistics),
        ["reset", "ike", "sa", ..] => ask(Request::ResetIkeSa { conn_id: number("conn-id") }),
        ["reset", "ipsec", "sa", ..] => {
            let policy = w.iter().position(|x| *x == "policy").and_then(|i| {
                let name = w.get(i + 1)?;
                let seq = w.get(i + 2)?.parse::<u32>().ok()?;
                Some(((*name).to_string(), seq))
            });
            ask(Request::ResetIpsecSa { remote: ip("remote"), policy })
        }
        _ => None,
    }
}
