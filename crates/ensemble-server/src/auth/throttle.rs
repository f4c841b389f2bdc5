//! Brute-force limits on login and registration, and a bound on tickets.
//!
//! - Per client address, `governor` rate limiters: login attempts
//!   (`--login-per-minute`), registrations (`--register-per-hour`) and
//!   session tickets (`--tickets-per-minute`; each is a store write, so
//!   this bounds the tickets table by rate × ticket lifetime).
//! - Per account, failures back off exponentially: after
//!   [`FREE_FAILURES`] failures the account refuses attempts for
//!   [`BASE_LOCK`], doubling with each further failure up to [`MAX_LOCK`].
//!   The count and lock live in the store, for real accounts and for names
//!   with no account alike (those are forgotten [`UNKNOWN_NAME_MEMORY`]
//!   after their last failure), so they survive a restart, every node
//!   answers the same, and the answers never reveal whether an account
//!   exists. A success resets the account.

use ensemble_core::time::Millis;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Failures allowed before the first lock.
pub const FREE_FAILURES: u32 = 5;
/// The first lock's length.
pub const BASE_LOCK: Duration = Duration::from_secs(30);
/// The longest lock.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// How long a name without an account keeps its failures after the last
/// one. Bounds that table by the per-address login rate times this.
pub const UNKNOWN_NAME_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// After `failures` failures, until when the account is locked (if at all).
pub fn lock_after(failures: u32, now: Millis) -> Option<Millis> {
    let extra = failures.checked_sub(FREE_FAILURES)?;
    let secs = BASE_LOCK
        .as_secs()
        .saturating_mul(1u64 << extra.min(16))
        .min(MAX_LOCK.as_secs());
    Some(now + i64::try_from(secs * 1000).unwrap_or(i64::MAX))
}

/// Seconds until `until`, at least 1.
pub fn secs_until(until: Millis, now: Millis) -> u64 {
    u64::try_from((until - now + 999) / 1000)
        .unwrap_or(0)
        .max(1)
}

/// The limiters.
pub struct Throttle {
    login: DefaultKeyedRateLimiter<IpAddr>,
    register: DefaultKeyedRateLimiter<IpAddr>,
    tickets: DefaultKeyedRateLimiter<IpAddr>,
}

fn per(n: u32, period: Duration) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period / n.get())
        .unwrap_or_else(|| Quota::per_second(n))
        .allow_burst(n)
}

impl Throttle {
    /// Limiters with the configured per-address quotas.
    pub fn new(login_per_minute: u32, register_per_hour: u32, tickets_per_minute: u32) -> Self {
        Self {
            login: RateLimiter::keyed(per(login_per_minute, Duration::from_secs(60))),
            register: RateLimiter::keyed(per(register_per_hour, Duration::from_secs(3600))),
            tickets: RateLimiter::keyed(per(tickets_per_minute, Duration::from_secs(60))),
        }
    }

    /// Takes one login attempt from `ip`'s allowance; `Err(secs)` to wait.
    pub fn login_attempt(&self, ip: IpAddr) -> Result<(), u64> {
        self.login.check_key(&ip).map_err(|n| wait_secs(&n))
    }

    /// Takes one registration from `ip`'s allowance; `Err(secs)` to wait.
    pub fn registration(&self, ip: IpAddr) -> Result<(), u64> {
        self.register.check_key(&ip).map_err(|n| wait_secs(&n))
    }

    /// Takes one session ticket from `ip`'s allowance; `Err(secs)` to wait.
    pub fn ticket(&self, ip: IpAddr) -> Result<(), u64> {
        self.tickets.check_key(&ip).map_err(|n| wait_secs(&n))
    }

    /// Drops limiter entries that are back to full allowance.
    pub fn sweep(&self) {
        self.login.retain_recent();
        self.register.retain_recent();
        self.tickets.retain_recent();
    }
}

fn wait_secs(n: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
    n.wait_time_from(DefaultClock::default().now())
        .as_secs_f64()
        .ceil()
        .max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_are_free_then_locks_double_up_to_the_cap() {
        assert_eq!(lock_after(4, 0), None);
        assert_eq!(lock_after(5, 0), Some(30_000));
        assert_eq!(lock_after(6, 0), Some(60_000));
        assert_eq!(lock_after(7, 0), Some(120_000));
        assert_eq!(lock_after(40, 0), Some(900_000));
    }

    #[test]
    fn per_address_allowance_is_a_burst_then_refused() {
        let t = Throttle::new(3, 2, 10);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            t.login_attempt(ip).unwrap();
        }
        let wait = t.login_attempt(ip).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        t.login_attempt(IpAddr::from([10, 0, 0, 2])).unwrap();
        t.registration(ip).unwrap();
        t.registration(ip).unwrap();
        assert!(t.registration(ip).unwrap_err() > 60);
    }
}
