//! The bytes of every message kind, pinned. A change here is a change of the wire format: it
//! needs docs/protocol.md updated and, unless old peers still read it, a new PROTOCOL_VERSION.

mod examples;

use std::collections::BTreeSet;

use examples::{Example, Message, examples, variants};
use veltrix_protocol::{ClientMessage, ErrorCode, ServerMessage};

fn example(name: &str) -> Example {
    examples().into_iter().find(|e| e.name == name).unwrap_or_else(|| panic!("no example {name}"))
}

macro_rules! snapshot_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let example = example(stringify!($name));
                example.assert_round_trips();
                insta::with_settings!({ description => format!("{:?}", example.message), omit_expression => true }, {
                    insta::assert_snapshot!(stringify!($name), example.hex_dump());
                });
            }
        )*
        const SNAPSHOT_TESTS: &[&str] = &[$(stringify!($name)),*];
    };
}

snapshot_tests!(
    client_hello,
    client_move,
    client_mod,
    client_command,
    server_welcome,
    server_error,
    server_player_appeared,
    server_player_moved,
    server_player_gone,
    server_position_corrected,
    server_mod,
    server_command_result,
    server_terrain,
);

#[test]
fn every_message_kind_has_an_example_and_a_snapshot_test() {
    let kinds = |client: bool| -> BTreeSet<&str> {
        examples().iter().filter(|e| matches!(e.message, Message::Client(_)) == client).map(|e| e.kind).collect()
    };
    assert_eq!(kinds(true), variants::<ClientMessage>().iter().copied().collect());
    assert_eq!(kinds(false), variants::<ServerMessage>().iter().copied().collect());
    let names: BTreeSet<String> = examples().into_iter().map(|e| e.name).collect();
    assert_eq!(names.len(), examples().len(), "example names are unique");
    assert_eq!(names, SNAPSHOT_TESTS.iter().map(|s| s.to_string()).collect());
}

fn protocol_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn docs_show_every_example_verbatim() {
    let docs = protocol_md();
    let missing: Vec<String> = examples()
        .iter()
        .filter(|e| !docs.contains(&e.hex_dump()))
        .map(|e| format!("{} ({:?}):\n```\n{}\n```", e.name, e.message, e.hex_dump()))
        .collect();
    assert!(missing.is_empty(), "docs/protocol.md lacks these dumps:\n\n{}", missing.join("\n\n"));
}

#[test]
fn docs_list_every_error_code() {
    let docs = protocol_md();
    let missing: Vec<&str> =
        variants::<ErrorCode>().iter().copied().filter(|code| !docs.contains(&format!("| `{code}` |"))).collect();
    assert!(missing.is_empty(), "docs/protocol.md has no table row for {missing:?}");
}

#[test]
fn hex_dump_format() {
    let bytes: Vec<u8> = (0..=17).collect();
    assert_eq!(examples::hex_dump(&bytes), "0000: 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\n0010: 10 11");
}
