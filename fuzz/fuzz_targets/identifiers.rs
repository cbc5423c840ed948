//! Identifiers (算力标识), credit codes and join strings: anything parses
//! or is refused, and what parses prints back to what parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use suanli_protocol::{
    identifier::{ExternalIdentifier, Identifier},
    join::JoinString,
    uscc::Uscc,
};

fuzz_target!(|text: &str| {
    if let Ok(id) = Identifier::parse(text) {
        let again = Identifier::parse(&id.to_string()).expect("a printed identifier parses");
        assert_eq!(again, id);
    }
    if let Ok(external) = ExternalIdentifier::parse(text) {
        let again = ExternalIdentifier::parse(&external.to_string())
            .expect("a printed external identifier parses");
        assert_eq!(again, external);
    }
    if let Ok(code) = Uscc::parse(text) {
        assert_eq!(
            Uscc::parse(code.as_str()).expect("a valid code parses"),
            code
        );
    }
    if let Ok(join) = text.parse::<JoinString>() {
        let again: JoinString = join
            .to_string()
            .parse()
            .expect("a printed join string parses");
        assert_eq!(again.to_string(), join.to_string());
    }
});
