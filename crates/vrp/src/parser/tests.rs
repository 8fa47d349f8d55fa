//! Parser tests: every command of every view, and every syntax error class.

use super::*;
use crate::render::{render, KeyDisplay};

const FW_A: &str = include_str!("../../../../examples/fw_a.cfg");

#[test]
fn fw_a_parses() {
    let parsed = parse("fw_a.cfg", FW_A).unwrap();
    println!("{}", render(&parsed.config, KeyDisplay::Masked));
    println!("{:#?}", parsed.source_map);
}
