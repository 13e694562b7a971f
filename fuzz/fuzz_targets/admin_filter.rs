//! The admin API's filter parser (`createdByType eq "dcr" and ...`) on arbitrary text: never a
//! panic, and every refusal names a position inside (or just past) the input.
#![no_main]

use gatehouse_core::endpoints::admin::filter::ClientFilter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = ClientFilter::parse(text) {
        assert!(e.position >= 1);
        assert!(e.position <= text.chars().count() + 1);
    }
});
