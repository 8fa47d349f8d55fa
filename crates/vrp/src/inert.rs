//! Incomplete objects, as the console tolerates them: a peer without a key, a policy entry
//! without an ACL, a proposal or a peer, an entry that names a proposal not typed yet. A file
//! with such an object is refused ([`crate::validate()`]: `Incomplete` and `MissingReference`
//! findings); the console accepts it and leaves it *inert* until it is complete, as the
//! device does. [`split`] says which objects are inert and why, and gives the configuration
//! without them: the one the daemon applies.
//!
//! An object that refers to an inert one is inert too (a policy entry whose peer has no key
//! yet), and a policy group whose entries are all inert leaves its interface inert.

use std::collections::BTreeMap;

use crate::diagnostic::{DiagnosticKind, Location};
use crate::model::Config;
use crate::parser::{SourceMap, View};

/// An object left out of the applied configuration, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inert {
    /// The object's key (`ike peer b`, `ipsec policy policy1 1`, `interface GigabitEthernet0/0/2`).
    pub object: String,
    /// What it lacks, one sentence each (the validator's words).
    pub reasons: Vec<String>,
}

/// The configuration without its inert objects, and the inert objects in the order found
/// (an object before those that wait for it).
pub fn split(config: &Config) -> (Config, Vec<Inert>) {
    let mut effective = config.clone();
    let mut inert: Vec<Inert> = Vec::new();
    for round in 0.. {
        let (map, views) = objects(&effective);
        let mut found: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for d in crate::validate::validate("", &effective, Some(&map), None) {
            let tolerated = matches!(d.kind, DiagnosticKind::Incomplete | DiagnosticKind::MissingReference);
            if !d.is_error() || !tolerated || d.line == 0 {
                continue;
            }
            // After the first round a missing reference is to an object found inert before.
            let message = if round > 0 {
                d.message.replace(", which is not defined", ", which is incomplete")
            } else {
                d.message
            };
            found.entry(d.line as usize - 1).or_default().push(message);
        }
        if found.is_empty() {
            break;
        }
        for (index, reasons) in found {
            let view = &views[index];
            remove(&mut effective, view);
            inert.push(Inert { object: view.key(), reasons });
        }
    }
    (effective, inert)
}

/// The keys of every object of `config` (`ike peer b`, `acl 3001`, `ipsec policy p 1`).
pub fn keys(config: &Config) -> Vec<String> {
    objects(config).1.iter().map(View::key).collect()
}

/// A source map that puts each object's view on a line of its own, and the views by line.
fn objects(config: &Config) -> (SourceMap, Vec<View>) {
    let mut views = Vec::new();
    views.extend(config.ike_proposals.keys().map(|n| View::IkeProposal(*n)));
    views.extend(config.ike_peers.keys().map(|n| View::IkePeer(n.clone())));
    for (n, table) in &config.ike_user_tables {
        views.push(View::UserTable(*n));
        views.extend(table.users.keys().map(|id| View::TableUser(*n, *id)));
    }
    views.extend(config.acls.keys().map(|n| View::Acl(*n)));
    views.extend(config.ipsec_proposals.keys().map(|n| View::IpsecProposal(n.clone())));
    for (name, entries) in &config.policy_templates {
        views.extend(entries.keys().map(|s| View::Template(name.clone(), *s)));
    }
    for (name, entries) in &config.ipsec_policies {
        views.extend(entries.keys().map(|s| View::Policy(name.clone(), *s)));
    }
    views.extend(config.interfaces.keys().map(|n| View::Interface(n.clone())));
    let mut map = SourceMap::default();
    for (i, view) in views.iter().enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        map.record(view.key(), Location { line, column: 1 });
    }
    (map, views)
}

fn remove(config: &mut Config, view: &View) {
    match view {
        View::IkeProposal(n) => drop(config.ike_proposals.remove(n)),
        View::IkePeer(name) => drop(config.ike_peers.remove(name)),
        View::Acl(n) => drop(config.acls.remove(n)),
        View::IpsecProposal(name) => drop(config.ipsec_proposals.remove(name)),
        View::Template(name, seq) => {
            if let Some(entries) = config.policy_templates.get_mut(name) {
                entries.remove(seq);
                if entries.is_empty() {
                    config.policy_templates.remove(name);
                }
            }
        }
        View::Policy(name, seq) => {
            if let Some(entries) = config.ipsec_policies.get_mut(name) {
                entries.remove(seq);
                if entries.is_empty() {
                    config.ipsec_policies.remove(name);
                }
            }
        }
        View::Interface(name) => drop(config.interfaces.remove(name)),
        View::UserTable(n) => drop(config.ike_user_tables.remove(n)),
        View::TableUser(n, id) => {
            if let Some(table) = config.ike_user_tables.get_mut(n) {
                table.users.remove(id);
            }
        }
        View::System | View::Broken | View::Ignored => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETE: &str = "ike proposal 10\nike peer b\n ike-proposal 10\n undo version 2\n \
        remote-address 192.0.2.2\n pre-shared-key tiandihui2tiandihui2\nacl number 3001\n \
        rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255\nipsec proposal a\n\
        ipsec policy policy1 1 isakmp\n security acl 3001\n proposal a\n ike-peer b\n\
        interface GigabitEthernet0/0/2\n ip address 192.0.2.1 255.255.255.0\n ipsec policy policy1\n";

    fn config(text: &str) -> Config {
        crate::parse("f", text).unwrap().config
    }

    #[test]
    fn a_complete_configuration_has_nothing_inert() {
        let c = config(COMPLETE);
        assert_eq!(split(&c), (c, Vec::new()));
    }

    #[test]
    fn a_peer_without_a_key_leaves_what_uses_it_inert() {
        let c = config(&COMPLETE.replace(" pre-shared-key tiandihui2tiandihui2\n", ""));
        let (effective, inert) = split(&c);
        let objects: Vec<&str> = inert.iter().map(|i| i.object.as_str()).collect();
        assert_eq!(objects, ["ike peer b", "ipsec policy policy1 1", "interface GigabitEthernet0/0/2"]);
        assert_eq!(
            inert[0].reasons,
            ["ike peer b authenticates with pre-shared keys but has no `pre-shared-key`"]
        );
        assert_eq!(inert[1].reasons, ["ipsec policy policy1 1 refers to ike peer b, which is incomplete"]);
        assert!(inert[2].reasons[0].contains("applies ipsec policy policy1, which is incomplete"));
        assert!(effective.ike_peers.is_empty() && effective.ipsec_policies.is_empty());
        assert!(effective.interfaces.is_empty());
        assert_eq!(effective.acls.len(), 1, "complete objects stay");
        assert!(crate::validate::validate("f", &effective, None, None).iter().all(|d| !d.is_error()));
    }

    #[test]
    fn references_typed_before_their_object_wait_for_it() {
        let text = "ike peer b\n ike-proposal 20\n undo version 2\n remote-address 192.0.2.2\n \
                    pre-shared-key tiandihui2tiandihui2\nipsec policy p 1 isakmp\n security acl 3009\n \
                    proposal x\n";
        let (_, inert) = split(&config(text));
        assert_eq!(inert[0].object, "ike peer b");
        assert_eq!(inert[0].reasons, ["ike peer b refers to ike proposal 20, which is not defined"]);
        assert_eq!(inert[1].object, "ipsec policy p 1");
        assert_eq!(
            inert[1].reasons,
            [
                "ipsec policy p 1 refers to acl 3009, which is not defined",
                "ipsec policy p 1 refers to ipsec proposal x, which is not defined",
                "ipsec policy p 1 has no `ike-peer`",
            ]
        );
    }
}
