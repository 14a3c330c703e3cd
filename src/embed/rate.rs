//! Requests and tokens per minute to each remote provider, shared by every statement and the
//! async backlog.
//!
//! Each attempt of a request (`http::Http::post_json_auth`, retries included) first asks
//! [`RateLimits::wait`] with the request's estimated tokens (its texts' characters / 4): it goes
//! at once while the requests started in the last minute are fewer than the provider's request
//! limit and their tokens plus its own stay within the token limit; else it waits until enough of
//! them are a minute old. Limits are the configured ones (`embed_rate_limits =
//! "jina_ai=500:1000000,openai=3000"`: requests[:tokens] per minute; a 429 lowers them only as
//! the provider's `x-ratelimit-limit-requests` / `-tokens` headers say), else unknown until the
//! provider answers 429: then the request limit becomes that header if it sends one, or the
//! number of requests it answered (other than with 429) in the minute before the refusal — so
//! after its first 429 a provider is never sent more than it just took. A learnt limit only goes
//! down, until a restart.
//! Starts count for a minute and a second (the provider sees them a little later). Where the
//! provider's reply says what a request cost (`usage.total_tokens` and the like), that count
//! replaces the estimate ([`RateLimits::settle`]).

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

/// A provider's configured limits per minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limit {
    pub requests: Option<u32>,
    pub tokens: Option<u64>,
}

/// `jina_ai=500:1000000,openai=3000` (requests[:tokens] per minute) → limits by provider.
pub fn parse_limits(s: &str) -> Result<HashMap<String, Limit>, String> {
    let mut out = HashMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (p, n) = part.split_once('=').ok_or_else(|| format!("embed_rate_limits: '{part}' is not provider=requests[:tokens] per minute"))?;
        let bad = || format!("embed_rate_limits: '{part}': limits are positive whole numbers (requests[:tokens] per minute)");
        let (r, t) = match n.split_once(':') {
            Some((r, t)) => (r.trim(), Some(t.trim())),
            None => (n.trim(), None),
        };
        let requests = if r.is_empty() { None } else { Some(r.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(bad)?) };
        let tokens = match t {
            Some(t) => Some(t.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(bad)?),
            None => None,
        };
        if requests.is_none() && tokens.is_none() {
            return Err(bad());
        }
        let p = p.trim().to_ascii_lowercase();
        if !super::PROVIDERS.contains(&p.as_str()) || p == "local" {
            return Err(format!("embed_rate_limits: unknown remote provider '{p}'"));
        }
        out.insert(key(&p), Limit { requests, tokens });
    }
    Ok(out)
}

/// A request's tokens as the budget counts them: its texts' characters / 4, rounded up.
pub fn estimated_tokens(body: &serde_json::Value) -> u64 {
    fn chars(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::String(s) => s.chars().count(),
            serde_json::Value::Array(a) => a.iter().map(chars).sum(),
            serde_json::Value::Object(o) => o.iter().filter(|(k, _)| !matches!(k.as_str(), "model")).map(|(_, v)| chars(v)).sum(),
            _ => 0,
        }
    }
    chars(body).div_ceil(4) as u64
}

#[derive(Default)]
struct Window {
    limit: Limit,
    /// Whether `limit` is the operator's: a 429 then lowers it only as the provider's headers say.
    configured: bool,
    /// When the requests of the last minute started and their tokens (oldest first).
    starts: VecDeque<(Instant, u64)>,
    /// When the provider answered them (other than 429).
    answered: VecDeque<Instant>,
}

impl Window {
    fn forget_old(&mut self, now: Instant) {
        while self.starts.front().is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW + MARGIN) {
            self.starts.pop_front();
        }
        while self.answered.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            self.answered.pop_front();
        }
    }

    /// How long until a request of `tokens` fits, if it does not now.
    fn wait_for(&self, now: Instant, tokens: u64) -> Option<Duration> {
        let until = |i: usize| (self.starts[i].0 + WINDOW + MARGIN).saturating_duration_since(now).max(Duration::from_millis(1));
        if let Some(limit) = self.limit.requests {
            if self.starts.len() >= limit as usize {
                return Some(until(self.starts.len() - limit as usize));
            }
        }
        if let Some(limit) = self.limit.tokens {
            // A request larger than the whole budget goes alone (else it would wait forever).
            let mut used: u64 = self.starts.iter().map(|(_, t)| t).sum();
            let mut i = 0;
            while used + tokens > limit && i < self.starts.len() {
                used -= self.starts[i].1;
                i += 1;
            }
            if i > 0 {
                return Some(until(i - 1));
            }
        }
        None
    }
}

#[derive(Default)]
pub struct RateLimits {
    windows: Mutex<HashMap<String, Window>>,
}

impl RateLimits {
    /// Limits from the configuration (keys as [`parse_limits`] gives them).
    pub fn new(configured: &HashMap<String, Limit>) -> RateLimits {
        let windows = configured.iter().map(|(p, l)| (p.clone(), Window { limit: *l, configured: true, ..Default::default() })).collect();
        RateLimits { windows: Mutex::new(windows) }
    }

    /// None: a request to `provider` of about `tokens` may start now (and is counted); Some: ask
    /// again after that long.
    pub fn wait(&self, provider: &str, tokens: u64) -> Option<Duration> {
        self.admit(provider, tokens).err()
    }

    /// [`RateLimits::wait`] that also says when an admitted request started (for [`settle`]).
    ///
    /// [`settle`]: RateLimits::settle
    pub fn admit(&self, provider: &str, tokens: u64) -> Result<Instant, Duration> {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        let w = windows.entry(key(provider)).or_default();
        w.forget_old(now);
        match w.wait_for(now, tokens) {
            Some(wait) => Err(wait),
            None => {
                w.starts.push_back((now, tokens));
                Ok(now)
            }
        }
    }

    /// The provider reported what an admitted request (started at `started` with `estimated`
    /// tokens) really cost: the budget counts that instead of the estimate.
    pub fn settle(&self, provider: &str, started: Instant, estimated: u64, actual: u64) {
        let mut windows = self.windows.lock();
        let Some(w) = windows.get_mut(&key(provider)) else { return };
        if let Some(start) = w.starts.iter_mut().find(|(t, n)| *t == started && *n == estimated) {
            start.1 = actual;
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

    /// `provider` answered 429: learn its limits (its `x-ratelimit-limit-requests` and
    /// `x-ratelimit-limit-tokens` headers where it sends them).
    pub fn refused(&self, provider: &str, requests_header: Option<u32>, tokens_header: Option<u64>) {
        let now = Instant::now();
        let mut windows = self.windows.lock();
        let w = windows.entry(key(provider)).or_default();
        w.forget_old(now);
        let taken = (w.answered.len() as u32).max(1);
        let learnt = match requests_header.filter(|h| *h > 0) {
            Some(h) => Some(h),
            None if w.configured => None,
            None => Some(taken),
        };
        let requests = match (w.limit.requests, learnt) {
            (Some(l), Some(n)) => Some(l.min(n)),
            (l, n) => l.or(n),
        };
        let tokens = match (w.limit.tokens, tokens_header.filter(|t| *t > 0)) {
            (Some(l), Some(h)) => Some(l.min(h)),
            (l, h) => l.or(h),
        };
        let next = Limit { requests, tokens };
        if w.limit != next {
            tracing::warn!("{provider}: rate limited (HTTP 429); sending at most {next:?} per minute from now on");
        }
        w.limit = next;
    }

    /// The limits in force for `provider` (configured or learnt).
    pub fn limit(&self, provider: &str) -> Limit {
        self.windows.lock().get(&key(provider)).map(|w| w.limit).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_and_learnt_limits() {
        let l = |r: Option<u32>, t: Option<u64>| Limit { requests: r, tokens: t };
        assert_eq!(
            parse_limits(" jina_ai=500:1000000, openai=3000, cohere=:5000 ").unwrap(),
            HashMap::from([("jinaai".into(), l(Some(500), Some(1_000_000))), ("openai".into(), l(Some(3000), None)), ("cohere".into(), l(None, Some(5000)))])
        );
        for bad in ["jina_ai", "jina_ai=0", "jina_ai=:", "jina_ai=5:x", "local=5", "acme=5"] {
            assert!(parse_limits(bad).is_err(), "{bad}");
        }

        let r = RateLimits::new(&parse_limits("jina_ai=2").unwrap());
        assert_eq!(r.limit("JinaAI").requests, Some(2), "either spelling");
        r.refused("JinaAI", None, None);
        assert_eq!(r.limit("JinaAI").requests, Some(2), "a configured limit is not learnt over");
        assert!(r.wait("JinaAI", 1).is_none() && r.wait("JinaAI", 1).is_none());
        let w = r.wait("JinaAI", 1).expect("the third request in a minute waits");
        assert!(w > Duration::from_secs(60) && w <= WINDOW + MARGIN);

        // Tokens: 100 per minute; 60 + 30 fit, 20 more wait, a request over the budget goes alone.
        let r = RateLimits::new(&parse_limits("cohere=:100").unwrap());
        assert!(r.wait("Cohere", 60).is_none() && r.wait("Cohere", 30).is_none());
        assert!(r.wait("Cohere", 20).is_some());
        let r = RateLimits::new(&parse_limits("cohere=:100").unwrap());
        assert!(r.wait("Cohere", 500).is_none(), "alone in its minute");
        assert!(r.wait("Cohere", 1).is_some());

        // Unknown until a 429: then what the provider answered in the minute before.
        let r = RateLimits::default();
        for _ in 0..5 {
            assert!(r.wait("OpenAI", 10).is_none());
        }
        for _ in 0..4 {
            r.answered("OpenAI");
        }
        r.refused("OpenAI", None, None);
        assert_eq!(r.limit("openai"), l(Some(4), None));
        assert!(r.wait("OpenAI", 10).is_some());
        // Headers say it exactly; a learnt limit only goes down.
        r.refused("OpenAI", Some(100), Some(40_000));
        assert_eq!(r.limit("openai"), l(Some(4), Some(40_000)));
        let r = RateLimits::default();
        assert!(r.wait("Cohere", 1).is_none());
        r.refused("Cohere", Some(3), None);
        assert_eq!(r.limit("cohere").requests, Some(3));
    }

    #[test]
    fn reported_tokens_replace_the_estimate() {
        let limits = RateLimits::new(&parse_limits("jina_ai=100:1000").unwrap());
        let started = limits.admit("jina_ai", 100).unwrap();
        // The provider counted 950 tokens: a request of 100 more no longer fits the minute.
        limits.settle("JinaAI", started, 100, 950);
        assert!(limits.wait("jina_ai", 100).is_some());
        let limits = RateLimits::new(&parse_limits("jina_ai=100:1000").unwrap());
        let started = limits.admit("jina_ai", 900).unwrap();
        limits.settle("jina_ai", started, 900, 50);
        assert!(limits.wait("jina_ai", 900).is_none());
    }

    #[test]
    fn token_estimate_counts_the_texts() {
        let body = serde_json::json!({"model": "a-long-model-name", "input": ["abcd", "efgh ij"], "task": "x"});
        assert_eq!(estimated_tokens(&body), 3); // 4 + 7 + 1 characters → 12 / 4
    }
}
