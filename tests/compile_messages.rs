//! Misuses give messages in the user's terms: each case in `tests/ui/` must fail to
//! compile with the message next to it (`.stderr`). To accept a new wording after a
//! deliberate change: `TRYBUILD=overwrite cargo test --test compile_messages`.
#![cfg(not(miri))]

#[test]
fn misuses_fail_with_messages_that_say_what_to_do() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
