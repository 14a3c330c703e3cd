//! Requests per minute to each remote provider, shared by every statement and the async backlog.
//!
//! Each attempt of a request (`http::Http::post_json_auth`, retries included) first asks
//! [`RateLimits::wait`]: it goes at once while fewer than the provider's limit started in the
//! last 60 s, else waits until the oldest of them is a minute old. The limit is the configured one
//! (`embed_rate_limits = "jina_ai=500,openai=3000"`), else unknown until the provider answers 429:
//! then it becomes the provider's `x-ratelimit-limit-requests` header if it sends one, or the
//! number of requests that it answered (other than with 429) in the minute before the refusal — so
//! after its first 429 a provider is never sent more than it just took. A limit learnt this way
//! only goes down. Starts count for a minute and a second (the provider sees them a little later).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const WINDOW: Duration = Duration::from_secs(60);
/// Starts are forgotten this much later than a minute: the provider's clock counts arrivals,
/// which come after our starts.
const MARGIN: Duration = Duration::from_secs(1);

/// A provider's name in either spelling (`jina_ai`, `JinaAI`, `nvidia_nim`, `NVIDIA NIM`) → one key.
fn key(provider: &str) -> String {
    provider.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

/// `jina_ai=500,openai=3000` (requests per minute) → limits by provider.
pub fn parse_limits(s: &str) -> Result<HashMap<String, u32>, String> {
    let mut out = HashMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (p, n) = part.split_once('=').ok_or_else(|| format!("embed_rate_limits: '{part}' is not provider=requests_per_minute"))?;
        let n: u32 = n.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| format!("embed_rate_limits: '{part}': the limit must be a positive whole number"))?;
        let p = p.trim().to_ascii_lowercase();
        if !super::PROVIDERS.contains(&p.as_str()) || p == "local" {
            return Err(format!("embed_rate_limits: unknown remote provider '{p}'"));
        }
        out.insert(key(&p), n);
    }
    Ok(out)
}

#[derive(Default)]
struct Window {
    limit: Option<u32>,
    /// When the requests of the last minute started (oldest first).
    starts: VecDeque<Instant>,
    /// When the provider answered them (other than 429).
    answered: VecDeque<Instant>,
}

impl Window {
    fn forget_old(&mut self, now: Instant) {
        while self.starts.front().is_some_and(|t| now.duration_since(*t) >= WINDOW + MARGIN) {
            self.starts.pop_front();
        }
        while self.answered.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            self.answered.pop_front();
        }
    }
}

#[derive(Default)]
pub struct RateLimits {
    windows: Mutex<HashMap<String, Window>>,
}

impl RateLimits {
    /// Limits from the configuration (keys as [`parse_limits`] gives them).
    pub fn new(configured: &HashMap<String, u32>) -> RateLimits {
        let windows = configured.iter().map(|(p, n)| (p.clone(), Window { limit: Some(*n), ..Default::default() })).collect();
        RateLimits { windows: Mutex::new(windows) }
    }

    /// None: a request to `provider` may start now (and is counted); Some: ask again after that long.
    pub fn wait(&self, provider: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        let w = windows.entry(key(provider)).or_default();
        w.forget_old(now);
        match w.limit {
            Some(limit) if w.starts.len() >= limit as usize => {
                let oldest = *w.starts.front().expect("a full window has a first start");
                Some((oldest + WINDOW + MARGIN).saturating_duration_since(now).max(Duration::from_millis(1)))
            }
            _ => {
                w.starts.push_back(now);
                None
            }
        }
    }

    /// `provider` answered a request (not with 429).
    pub fn answered(&self, provider: &str) {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        let w = windows.entry(key(provider)).or_default();
        w.forget_old(now);
        w.answered.push_back(now);
    }

    /// `provider` answered 429: learn its limit (`header`: its `x-ratelimit-limit-requests`).
    pub fn refused(&self, provider: &str, header: Option<u32>) {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        let w = windows.entry(key(provider)).or_default();
        w.forget_old(now);
        let taken = (w.answered.len() as u32).max(1);
        let learnt = header.filter(|h| *h > 0).unwrap_or(taken);
        let limit = w.limit.map_or(learnt, |l| l.min(learnt));
        if w.limit != Some(limit) {
            tracing::warn!("{provider}: rate limited (HTTP 429); sending at most {limit} requests per minute from now on");
        }
        w.limit = Some(limit);
    }

    /// The limit in force for `provider` (configured or learnt), if any.
    pub fn limit(&self, provider: &str) -> Option<u32> {
        self.windows.lock().get(&key(provider)).and_then(|w| w.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_and_learnt_limits() {
        assert_eq!(parse_limits(" jina_ai=500, openai=3000 ").unwrap(), HashMap::from([("jinaai".into(), 500), ("openai".into(), 3000)]));
        assert!(parse_limits("jina_ai").is_err() && parse_limits("jina_ai=0").is_err() && parse_limits("local=5").is_err() && parse_limits("acme=5").is_err());

        let r = RateLimits::new(&parse_limits("jina_ai=2").unwrap());
        assert_eq!(r.limit("JinaAI"), Some(2), "either spelling");
        assert!(r.wait("JinaAI").is_none() && r.wait("JinaAI").is_none());
        let w = r.wait("JinaAI").expect("the third request in a minute waits");
        assert!(w > Duration::from_secs(60) && w <= WINDOW + MARGIN);

        // Unknown until a 429: then what the provider answered in the minute before.
        let r = RateLimits::default();
        for _ in 0..5 {
            assert!(r.wait("OpenAI").is_none());
        }
        for _ in 0..4 {
            r.answered("OpenAI");
        }
        r.refused("OpenAI", None);
        assert_eq!(r.limit("openai"), Some(4));
        assert!(r.wait("OpenAI").is_some());
        // A header says it exactly; a learnt limit only goes down.
        r.refused("OpenAI", Some(100));
        assert_eq!(r.limit("openai"), Some(4));
        let r = RateLimits::default();
        assert!(r.wait("Cohere").is_none());
        r.refused("Cohere", Some(3));
        assert_eq!(r.limit("cohere"), Some(3));
    }
}
