use super::*;

const FW_A: &str = include_str!("../../../examples/fw_a.cfg");

fn views(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Types `text` as an operator would at the console: an unindented line in the system view
/// (entering the view it opens), an indented one in the view entered last. Returns the notes.
fn type_file(running: &mut Running, text: &str) -> String {
    let mut view: Vec<String> = Vec::new();
    let mut notes = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
        let indented = line.starts_with(' ');
        let in_view: Vec<String> = if indented { view.clone() } else { Vec::new() };
        let change = running.prepare(&in_view, line.trim(), None).unwrap_or_else(|e| panic!("{line}: {e}"));
        notes.push_str(&change.text);
        let opened = change.json["opened_view"] == true;
        running.commit(change);
        if !indented {
            view = if opened { vec![line.trim().to_owned()] } else { Vec::new() };
        }
    }
    notes
}

fn file_config(text: &str) -> Config {
    vrp::parse("f", text).unwrap().config
}

#[test]
fn typing_the_file_line_by_line_gives_the_files_configuration() {
    let mut running = Running::default();
    type_file(&mut running, FW_A);
    assert_eq!(running.config(), &file_config(FW_A));
    let lines = FW_A.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
    // Three lines set what is already the default: `exchange-mode main`, `transform esp`,
    // `encapsulation-mode tunnel`; they change nothing.
    assert_eq!(running.unsaved(), lines - 3);
    // Entering a view that exists, or leaving one, changes nothing and is not counted.
    for (v, line) in [(vec![], "ike peer b"), (views(&["ike peer b"]), "quit")] {
        let change = running.prepare(&v, line, None).unwrap();
        assert!(!change.changed && change.text.is_empty(), "{line}: {}", change.text);
        running.commit(change);
    }
    assert_eq!(running.unsaved(), lines - 3);
    let (text, json) = running.current_configuration();
    assert_eq!(text, render(&file_config(FW_A), KeyDisplay::Masked));
    assert!(!text.contains("tiandihui2"), "keys are masked:\n{text}");
    assert!(text.contains(" pre-shared-key cipher %^%#********%^%#\n"), "{text}");
    assert_eq!(json["inert"], json!([]));
}

/// The display order is the device's (by kind of object, then by name or number), whatever
/// order the objects were typed in.
#[test]
fn the_display_order_does_not_depend_on_the_typing_order() {
    let mut blocks: Vec<String> = Vec::new();
    for line in FW_A.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with(' ') {
            if let Some(b) = blocks.last_mut() {
                b.push_str(line);
                b.push('\n');
            }
        } else {
            blocks.push(format!("{line}\n"));
        }
    }
    blocks.reverse();
    let mut running = Running::default();
    let notes = type_file(&mut running, &blocks.concat());
    assert!(notes.contains("Info: interface GigabitEthernet0/0/2 stays inert"), "{notes}");
    assert!(notes.contains("Info: ike peer b is complete and applied."), "{notes}");
    assert_eq!(running.current_configuration().0, render(&file_config(FW_A), KeyDisplay::Masked));
    assert!(running.effective().1.is_empty());
}

#[test]
fn a_peer_without_a_key_is_inert_with_its_policy_and_interface_until_the_key_comes() {
    let without = FW_A.replace(" pre-shared-key tiandihui2\n", "");
    let mut running = Running::default();
    let notes = type_file(&mut running, &without);
    assert!(
        notes.contains(
            "Info: ike peer b stays inert until it is complete: ike peer b authenticates with pre-shared \
             keys but has no `pre-shared-key`.\n"
        ),
        "{notes}"
    );
    let (effective, inert) = running.effective();
    let objects: Vec<&str> = inert.iter().map(|i| i.object.as_str()).collect();
    assert_eq!(objects, ["ike peer b", "ipsec policy policy1 1", "interface GigabitEthernet0/0/2"]);
    assert!(effective.ike_peers.is_empty() && effective.interfaces.is_empty());

    let (this, json) = running.this(&views(&["ike peer b"])).unwrap();
    assert!(
        this.starts_with(
            "#\nike peer b\n ike-proposal 10\n undo version 2\n remote-address 192.0.2.2\n#\nreturn\n"
        ),
        "{this}"
    );
    assert!(this.contains("Info: ike peer b stays inert"), "{this}");
    assert_eq!(json["inert"].as_array().unwrap().len(), 1);
    let (system, _) = running.this(&[]).unwrap();
    assert_eq!(system.matches("Info: ").count(), 3, "the system view notes every inert object:\n{system}");

    let e = running.save(Path::new("/nonexistent/never-written.cfg")).unwrap_err();
    assert!(e.starts_with("Error: the configuration has incomplete objects and was not saved"), "{e}");
    assert!(e.contains("ike peer b: ike peer b authenticates"), "{e}");

    let change = running.prepare(&views(&["ike peer b"]), "pre-shared-key tiandihui2", None).unwrap();
    assert!(change.inert.is_empty());
    assert_eq!(change.logged, "[ike peer b] pre-shared-key %^%#********%^%#");
    for object in ["ike peer b", "ipsec policy policy1 1", "interface GigabitEthernet0/0/2"] {
        assert!(change.text.contains(&format!("Info: {object} is complete and applied.")), "{}", change.text);
    }
    running.commit(change);
    assert_eq!(running.config(), &file_config(FW_A));
}

#[test]
fn a_refused_line_changes_nothing_and_says_error() {
    let mut running = Running::default();
    type_file(&mut running, FW_A);
    let before = running.config().clone();
    let unsaved = running.unsaved();
    for (v, line, wanted) in [
        (vec![], "ike peer", "Error: unexpected end of line"),
        (views(&["ike peer b"]), "remote-address 192.0.2.300", "Error: invalid"),
        (views(&["ike peer b"]), "undo version 1", "Error: ike peer b has IKEv1 disabled"),
        (vec![], "ipsec policy policy1 1 isakmp template t", "Error: duplicate sequence number 1"),
        (views(&["sysname FW_A"]), "dh group14", "Error: `sysname FW_A` does not open a view"),
    ] {
        let e = running.prepare(&v, line, None).unwrap_err();
        assert!(e.starts_with(wanted), "{line}: {e}");
    }
    // Two entries of one group on an interface that would protect the same traffic.
    let e = running.prepare(&[], "ipsec policy policy1 2 isakmp", None).and_then(|c| {
        running.commit(c);
        running.prepare(&views(&["ipsec policy policy1 2 isakmp"]), "security acl 3001", None)
    });
    assert!(e.unwrap_err().starts_with("Error: ipsec policy policy1 2 (acl 3001 rule 5) overlaps"));
    running.prepare(&[], "undo ipsec policy policy1 2", None).map(|c| running.commit(c)).unwrap();
    assert_eq!(running.config(), &before);
    assert_eq!(running.unsaved(), unsaved + 2);
}

/// `undo` in every view, and the system view's own settings.
#[test]
fn undo_in_every_view() {
    let mut running = Running::default();
    type_file(&mut running, FW_A);
    let steps: &[(&[&str], &str)] = &[
        (&[], "sysname FW_A"),
        (&[], "ipsec sa global-duration time-based 7200"),
        (&["ike proposal 10"], "dh group5"),
        (&["ike proposal 10"], "undo dh"),
        (&["ike peer b"], "dpd type periodic"),
        (&["ike peer b"], "undo dpd type"),
        (&["acl number 3001"], "rule 10 permit ip source 10.1.3.0 0.0.0.255 destination 10.2.3.0 0.0.0.255"),
        (&["acl number 3001"], "undo rule 10"),
        (&["ipsec proposal a"], "undo esp encryption-algorithm"),
        (&["ipsec policy policy1 1 isakmp"], "pfs dh-group14"),
        (&["ipsec policy policy1 1 isakmp"], "undo pfs"),
        (&[], "ipsec policy-template t 10"),
        (&["ipsec policy-template t 10"], "proposal a"),
        (&[], "undo ipsec policy-template t 10"),
        (&["interface GigabitEthernet0/0/2"], "undo ipsec policy"),
    ];
    for (v, line) in steps {
        let change = running.prepare(&views(v), line, None).unwrap_or_else(|e| panic!("{line}: {e}"));
        running.commit(change);
    }
    let (system, _) = running.this(&[]).unwrap();
    assert!(system.starts_with("#\nsysname FW_A\n#\nipsec sa global-duration time-based 7200\n"), "{system}");
    let (proposal, _) = running.this(&views(&["ipsec proposal a"])).unwrap();
    assert_eq!(
        proposal,
        "#\nipsec proposal a\n esp authentication-algorithm md5\n undo esp encryption-algorithm\n#\nreturn\n"
    );
    let (interface, _) = running.this(&views(&["interface GigabitEthernet0/0/2"])).unwrap();
    assert_eq!(
        interface,
        "#\ninterface GigabitEthernet0/0/2\n ip address 192.0.2.1 255.255.255.0\n#\nreturn\n"
    );
    let (policy, _) = running.this(&views(&["ipsec policy policy1 1 isakmp"])).unwrap();
    assert_eq!(
        policy,
        "#\nipsec policy policy1 1 isakmp\n security acl 3001\n proposal a\n ike-peer b\n#\nreturn\n"
    );
    let c = running.config();
    assert!(c.policy_templates.is_empty() && c.acls[&3001].rules.len() == 1);
    assert_eq!(c.ike_proposals[&10], vrp::model::IkeProposal::default());
}

#[test]
fn save_writes_what_check_reads_back_and_counts_the_changes() {
    let dir = std::env::temp_dir().join(format!("ks-running-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fw_a.cfg");
    std::fs::write(&file, "# old file\n").unwrap();
    let mut running = Running::new(Config::default());
    type_file(&mut running, FW_A);
    let (text, json) = running.save(&file).unwrap();
    assert_eq!(
        text,
        format!(
            "Now saving the current configuration to {}.\nSave the configuration successfully.\n",
            file.display()
        )
    );
    assert_eq!(json["changes_saved"], 19);
    assert_eq!(running.unsaved(), 0);
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains(" pre-shared-key tiandihui2\n"), "the file has the key:\n{written}");
    let checked = vrp::check("saved", &written, None);
    assert_eq!(checked.config.as_ref(), Some(running.config()), "{:?}", checked.diagnostics);
    assert_eq!(std::fs::read_to_string(dir.join("fw_a.cfg.bak")).unwrap(), "# old file\n");
    let (saved, _) = saved_configuration(&file).unwrap();
    assert_eq!(saved, running.current_configuration().0);
    assert!(!saved.contains("tiandihui2"));

    let discarded = running.replace(file_config(&written));
    assert_eq!(discarded, 0);
    running.prepare(&[], "sysname FW_A", None).map(|c| running.commit(c)).unwrap();
    assert_eq!(running.replace(file_config(&written)), 1, "a reload discards the unsaved change");
    assert_eq!(running.config(), &file_config(&written));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn warnings_are_said_once_when_they_appear() {
    let mut running = Running::default();
    let change = running.prepare(&[], "ike peer b", None).unwrap();
    assert!(change.text.contains("Warning: ike peer b has IKEv2 enabled (the default)"), "{}", change.text);
    running.commit(change);
    let change = running.prepare(&views(&["ike peer b"]), "remote-address 192.0.2.2", None).unwrap();
    assert!(!change.text.contains("IKEv2"), "{}", change.text);
    assert!(
        change.text.contains("Info: ike peer b stays inert"),
        "the edited object's note: {}",
        change.text
    );
    let change = running.prepare(&views(&["ike peer b"]), "pre-shared-key short", None).unwrap();
    assert!(
        change.text.contains("Warning: ike peer b: pre-shared key of 5 characters is short"),
        "{}",
        change.text
    );
    assert!(!change.logged.contains("short") && !change.text.contains("short\n"), "{}", change.logged);
}

/// An address the host lacks is warned about once, when it is typed.
#[test]
fn an_address_the_host_lacks_is_warned_about_when_typed() {
    let host = [Ipv4Addr::new(192, 0, 2, 1)];
    let mut running = Running::default();
    running.prepare(&[], "interface out0", Some(&host)).map(|c| running.commit(c)).unwrap();
    let change =
        running.prepare(&views(&["interface out0"]), "ip address 192.0.2.9 24", Some(&host)).unwrap();
    assert!(
        change.text.contains("Warning: interface out0 address 192.0.2.9 is not an address of this host"),
        "{}",
        change.text
    );
    running.commit(change);
    let change = running.prepare(&[], "sysname x", Some(&host)).unwrap();
    assert!(change.text.is_empty(), "said once: {}", change.text);
}
