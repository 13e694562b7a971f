//! Fixed one-minute windows per key (an IP address, an account). In-process: on Lambda each
//! warm container counts on its own, so these slow a single noisy source; durable quotas (the
//! tenant's pending-client cap) live in the store, and API Gateway throttles routes.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter<K> {
    per_minute: u32,
    windows: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// Most keys tracked; past it stale windows are dropped, and if all are still live a new
    /// key is let through untracked rather than dropping a live window to make room (memory
    /// stays bounded under a flood of distinct keys, and no flood resets a key's count). The
    /// limits that must hold under such a flood live in the store: the tenant's pending cap
    /// and the per-account sign-in failures.
    const MAX: usize = 65_536;
    pub const WINDOW: Duration = Duration::from_secs(60);

    /// `per_minute == 0` turns the limiter off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt for `key`; `false` when the key is over its limit.
    pub fn allow(&self, key: K, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= Self::MAX {
            windows.retain(|_, (start, _)| now.duration_since(*start) < Self::WINDOW);
            if windows.len() >= Self::MAX && !windows.contains_key(&key) {
                return true;
            }
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= Self::WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn counts_per_key_and_window() {
        let limiter = RateLimiter::new(2);
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert!(limiter.allow(a, t0));
        assert!(limiter.allow(a, t0));
        assert!(!limiter.allow(a, t0));
        assert!(limiter.allow(b, t0));
        assert!(limiter.allow(a, t0 + RateLimiter::<IpAddr>::WINDOW));
        assert!(RateLimiter::new(0).allow(a, t0));
    }

    #[test]
    fn a_flood_of_other_keys_never_resets_a_live_window() {
        let limiter = RateLimiter::new(1);
        let t0 = Instant::now();
        assert!(limiter.allow(0_u32, t0));
        assert!(!limiter.allow(0_u32, t0));
        for k in 1..=u32::try_from(RateLimiter::<u32>::MAX).unwrap_or(u32::MAX) {
            limiter.allow(k, t0);
        }
        assert!(
            !limiter.allow(0_u32, t0),
            "the flooded key's window was dropped"
        );
    }
}
