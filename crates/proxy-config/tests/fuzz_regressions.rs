//! Inputs the fuzzer (fuzz/, target bodies in feed-fuzz) found, kept as table tests: each was
//! a contract violation before its fix.

use proxy_config::Loader;
use rstest::rstest;

/// A YAML file whose top level is not a table used to fail with the config crate's message,
/// which quotes the whole value: a file holding only a proxy URL printed its password. Keys that
/// are not plain scalars, and duplicated keys, were quoted by yaml-rust2 the same way.
#[rstest]
#[case::url_as_the_whole_file(
    "http://user:hunter2@proxy.example:8080\n",
    "invalid YAML: the top level is a string, not a table (from file feed.yaml)"
)]
#[case::quoted_string(
    "'socks5h://user:hunter2@gw:1080'",
    "invalid YAML: the top level is a string, not a table (from file feed.yaml)"
)]
#[case::integer(
    "8080",
    "invalid YAML: the top level is an integer, not a table (from file feed.yaml)"
)]
#[case::boolean(
    "true",
    "invalid YAML: the top level is a boolean, not a table (from file feed.yaml)"
)]
#[case::float(
    "2.5",
    "invalid YAML: the top level is a floating-point number, not a table (from file feed.yaml)"
)]
#[case::list(
    "- http://user:hunter2@proxy.example:8080\n",
    "invalid YAML: the top level is a list, not a table (from file feed.yaml)"
)]
#[case::null(
    "~",
    "invalid YAML: the top level is nothing, not a table (from file feed.yaml)"
)]
fn yaml_top_level_is_named_not_quoted(#[case] text: &str, #[case] expected: &str) {
    let error = Loader::new()
        .yaml_str("feed.yaml", text)
        .load()
        .expect_err("not a table");
    assert_eq!(error.to_string(), expected);
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
}

#[rstest]
#[case::duplicated_key("proxy: {}\nhttp://user:hunter2@h:1: 1\nhttp://user:hunter2@h:1: 2\n")]
#[case::sequence_key("? [http://user:hunter2@h:1]\n: x\n")]
#[case::mapping_key("? {url: 'http://user:hunter2@h:1'}\n: x\n")]
fn yaml_parser_messages_quote_no_key(#[case] text: &str) {
    let error = Loader::new()
        .yaml_str("feed.yaml", text)
        .load()
        .expect_err("invalid");
    let shown = format!("{error}\n{error:?}");
    assert!(shown.contains("invalid YAML: "), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
