//! OT: for any text and two operations valid against it, transforming never panics, each
//! transformed operation fits the text the other produced, and both orders converge (TP1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamhub_biz::edit::ot::{TextOp, apply, transform};

/// An operation shaped by fuzz input, then fitted to a text of `len` chars.
fn op(insert: bool, at: u16, amount: u16, text: &str, len: usize) -> TextOp {
    let at = usize::from(at) % (len + 1);
    if insert {
        TextOp::insert(at, text)
    } else {
        TextOp::delete(at, usize::from(amount) % (len - at + 1))
    }
}

fn applied(text: &str, op: &TextOp) -> String {
    let mut out = text.to_owned();
    apply(&mut out, text.chars().count(), op).expect("the operation fits its text");
    out
}

fuzz_target!(
    |input: (String, (bool, u16, u16, String), (bool, u16, u16, String))| {
        let (text, (a_insert, a_at, a_amount, a_text), (b_insert, b_at, b_amount, b_text)) = input;
        let len = text.chars().count();
        let a = op(a_insert, a_at, a_amount, &a_text, len);
        let b = op(b_insert, b_at, b_amount, &b_text, len);
        let after_a = applied(&text, &a);
        let after_b = applied(&text, &b);
        let b_after_a = transform(&b, &a);
        let a_after_b = transform(&a, &b);
        assert!(b_after_a.check(after_a.chars().count()).is_ok());
        assert!(a_after_b.check(after_b.chars().count()).is_ok());
        assert_eq!(applied(&after_a, &b_after_a), applied(&after_b, &a_after_b));
    }
);
