//! Where "now" comes from. Every lifetime (authorization code 300 s, parked request 600 s,
//! session 8 h, grant 30 days, signing-key activation) is measured against [`Clock::now`], which
//! the application reads once per request ([`crate::context::Ctx::now`]). Production reads the
//! system clock; black-box tests move an offset forward to reach lifetimes that are hours or
//! days long without waiting for them.

use crate::domain::{UnixTime, unix_now};
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// The system clock plus the offset (whole seconds, as text) in a file, read on every call:
    /// `gatehouse serve` with `GATEHOUSE_DEV_CLOCK_FILE`, for black-box tests of lifetimes. A
    /// missing or unreadable file means no offset. Development only: the SAM template never sets
    /// it.
    OffsetFile(PathBuf),
}

impl Clock {
    pub fn now(&self) -> UnixTime {
        let offset = match self {
            Self::System => 0,
            Self::OffsetFile(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .unwrap_or(0),
        };
        unix_now().saturating_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_file_moves_the_clock_and_nothing_else_does() {
        let dir = std::env::temp_dir().join(format!("gatehouse-clock-{}", std::process::id()));
        let file = Clock::OffsetFile(dir.clone());
        let system = unix_now();
        assert!(file.now() - system <= 1, "a missing file is no offset");
        std::fs::write(&dir, "86400\n").unwrap();
        assert!(file.now() - system >= 86400);
        std::fs::write(&dir, "soon").unwrap();
        assert!(
            file.now() - system <= 1,
            "an unreadable offset is no offset"
        );
        let _ = std::fs::remove_file(&dir);
    }
}
