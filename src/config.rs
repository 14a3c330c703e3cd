//! One `Config` for the server, assembled from (highest first) command-line flags, `EMBEDB_*`
//! environment variables, a TOML file, and defaults. clap already gives flags precedence over their
//! env vars; the file then fills whatever neither set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log_level: String,
    /// user → password (empty password allowed).
    pub users: BTreeMap<String, String>,
    /// Where local embedding models live (and where the default one is unpacked).
    pub model_dir: PathBuf,
    /// Remote embedding providers: per-request HTTP timeout in seconds.
    pub embed_timeout_secs: u64,
    /// Retries of a failed provider request (429, 5xx, connection errors).
    pub embed_max_retries: u32,
    /// Provider requests of one statement in flight at once.
    pub embed_concurrency: usize,
    /// Base URL of the Jina AI API.
    pub jina_api_base: String,
    /// Bases `TIDB_EXP_EMBED_OPENAI_API_BASE` may point to (OpenAI's own is always allowed).
    pub allowed_api_bases: Vec<String>,
    /// Requests[:tokens] per minute by remote provider: `jina_ai=500:1000000,openai=3000` (empty:
    /// learnt from 429s).
    pub embed_rate_limits: String,
    /// PEM certificate chain and private key; with both, clients may switch to TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse logins that did not switch to TLS (MySQL's `require_secure_transport`).
    pub require_secure_transport: bool,
    /// Client connections open at once; 0 = no limit (TiDB's default). Over it: 1040.
    pub max_connections: u32,
    /// The key that seals provider keys at rest (`crate::secrets`); None = `<data_dir>/secret.key`.
    pub secret_key_file: Option<PathBuf>,
    /// `host:port` of the Prometheus `/metrics` endpoint; None = off.
    pub metrics_addr: Option<String>,
    /// Where the rows live when not in the data dir: `s3://bucket/prefix` (cluster mode's
    /// engine, SlateDB on object storage; `file:///dir` and `memory://` for tests).
    pub storage: Option<String>,
    /// Run as one node of a cluster (`crate::cluster`): rows in `storage`, leases in `etcd`.
    pub cluster: bool,
    /// etcd members, `http://host:port` each.
    pub etcd: Vec<String>,
    /// This node's name in the cluster; None = `host:port`.
    pub node_name: Option<String>,
    /// The `host:port` other nodes reach this node's MySQL port at; None = `host:port`.
    pub advertise: Option<String>,
    /// Seconds the writer lease lasts without renewal (failover takes about this long).
    pub lease_ttl_secs: u64,
}

impl Config {
    /// Where the key that seals provider keys lives.
    pub fn secret_key_path(&self) -> PathBuf {
        self.secret_key_file.clone().unwrap_or_else(|| self.data_dir.join("secret.key"))
    }

    /// The remote providers' HTTP settings.
    pub fn http_settings(&self) -> crate::embed::http::HttpSettings {
        crate::embed::http::HttpSettings {
            timeout: std::time::Duration::from_secs(self.embed_timeout_secs.max(1)),
            max_retries: self.embed_max_retries,
            concurrency: self.embed_concurrency.max(1),
            jina_api_base: self.jina_api_base.clone(),
            allowed_api_bases: self.allowed_api_bases.clone(),
            // Checked when the configuration is loaded (`resolve`).
            rate_limits: crate::embed::rate::parse_limits(&self.embed_rate_limits).unwrap_or_default(),
        }
    }
}

/// `$HOME/.cache/embedb/models`, shared by every data directory on the machine.
pub fn default_model_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("embedb").join("models")
}

impl Default for Config {
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert("root".to_string(), String::new());
        Config {
            host: "127.0.0.1".into(),
            port: 4000,
            data_dir: PathBuf::from("./embedb-data"),
            log_level: "info".into(),
            users,
            model_dir: default_model_dir(),
            embed_timeout_secs: crate::embed::http::DEFAULT_TIMEOUT_SECS,
            embed_max_retries: crate::embed::http::DEFAULT_MAX_RETRIES,
            embed_concurrency: crate::embed::http::DEFAULT_CONCURRENCY,
            jina_api_base: crate::embed::http::DEFAULT_JINA_API_BASE.to_string(),
            allowed_api_bases: Vec::new(),
            embed_rate_limits: String::new(),
            tls_cert: None,
            tls_key: None,
            require_secure_transport: false,
            max_connections: 0,
            secret_key_file: None,
            metrics_addr: None,
            storage: None,
            cluster: false,
            etcd: Vec::new(),
            node_name: None,
            advertise: None,
            lease_ttl_secs: 3,
        }
    }
}

/// The TOML file's shape: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    pub users: Option<BTreeMap<String, String>>,
    pub model_dir: Option<PathBuf>,
    pub embed_timeout_secs: Option<u64>,
    pub embed_max_retries: Option<u32>,
    pub embed_concurrency: Option<usize>,
    pub jina_api_base: Option<String>,
    pub allowed_api_bases: Option<Vec<String>>,
    pub embed_rate_limits: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub require_secure_transport: Option<bool>,
    pub max_connections: Option<u32>,
    pub secret_key_file: Option<PathBuf>,
    pub metrics_addr: Option<String>,
    pub storage: Option<String>,
    pub cluster: Option<bool>,
    pub etcd: Option<Vec<String>>,
    pub node_name: Option<String>,
    pub advertise: Option<String>,
    pub lease_ttl_secs: Option<u64>,
}

/// Values given on the command line or in the environment (None = not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub log_level: Option<String>,
    /// `user:password,user2:password2`
    pub users: Option<String>,
    pub model_dir: Option<PathBuf>,
    pub embed_timeout_secs: Option<u64>,
    pub embed_max_retries: Option<u32>,
    pub embed_concurrency: Option<usize>,
    pub jina_api_base: Option<String>,
    /// Comma-separated list.
    pub allowed_api_bases: Option<String>,
    pub embed_rate_limits: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub require_secure_transport: Option<bool>,
    pub max_connections: Option<u32>,
    pub secret_key_file: Option<PathBuf>,
    pub metrics_addr: Option<String>,
    pub storage: Option<String>,
    pub cluster: Option<bool>,
    /// Comma-separated list.
    pub etcd: Option<String>,
    pub node_name: Option<String>,
    pub advertise: Option<String>,
    pub lease_ttl_secs: Option<u64>,
}

/// `a, b,,c` → `["a", "b", "c"]`.
pub fn parse_list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect()
}

pub fn parse_users(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut m = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (u, p) = part.split_once(':').unwrap_or((part, ""));
        if u.is_empty() {
            return Err(format!("invalid user entry '{part}': expected user:password"));
        }
        m.insert(u.to_string(), p.to_string());
    }
    if m.is_empty() {
        return Err("no users given".into());
    }
    Ok(m)
}

impl Config {
    pub fn load(file: Option<&Path>, o: Overrides) -> Result<Config, String> {
        let f: FileConfig = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read config {}: {e}", p.display()))?;
                toml::from_str(&text).map_err(|e| format!("invalid config {}: {e}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let d = Config::default();
        let c = Config {
            host: o.host.or(f.host).unwrap_or(d.host),
            port: o.port.or(f.port).unwrap_or(d.port),
            data_dir: o.data_dir.or(f.data_dir).unwrap_or(d.data_dir),
            log_level: o.log_level.or(f.log_level).unwrap_or(d.log_level),
            model_dir: o.model_dir.or(f.model_dir).unwrap_or(d.model_dir),
            embed_timeout_secs: o.embed_timeout_secs.or(f.embed_timeout_secs).unwrap_or(d.embed_timeout_secs),
            embed_max_retries: o.embed_max_retries.or(f.embed_max_retries).unwrap_or(d.embed_max_retries),
            embed_concurrency: o.embed_concurrency.or(f.embed_concurrency).unwrap_or(d.embed_concurrency),
            jina_api_base: o.jina_api_base.or(f.jina_api_base).unwrap_or(d.jina_api_base),
            allowed_api_bases: o.allowed_api_bases.map(|s| parse_list(&s)).or(f.allowed_api_bases).unwrap_or(d.allowed_api_bases),
            embed_rate_limits: o.embed_rate_limits.or(f.embed_rate_limits).unwrap_or(d.embed_rate_limits),
            tls_cert: o.tls_cert.or(f.tls_cert),
            tls_key: o.tls_key.or(f.tls_key),
            require_secure_transport: o.require_secure_transport.or(f.require_secure_transport).unwrap_or(d.require_secure_transport),
            max_connections: o.max_connections.or(f.max_connections).unwrap_or(d.max_connections),
            secret_key_file: o.secret_key_file.or(f.secret_key_file),
            metrics_addr: o.metrics_addr.or(f.metrics_addr),
            storage: o.storage.or(f.storage),
            cluster: o.cluster.or(f.cluster).unwrap_or(d.cluster),
            etcd: o.etcd.map(|s| parse_list(&s)).or(f.etcd).unwrap_or(d.etcd),
            node_name: o.node_name.or(f.node_name),
            advertise: o.advertise.or(f.advertise),
            lease_ttl_secs: o.lease_ttl_secs.or(f.lease_ttl_secs).unwrap_or(d.lease_ttl_secs),
            users: match o.users {
                Some(u) => parse_users(&u)?,
                None => f.users.unwrap_or(d.users),
            },
        };
        crate::embed::rate::parse_limits(&c.embed_rate_limits)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flags_then_file_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("embedb.toml");
        std::fs::write(&p, "port = 5000\nhost = \"0.0.0.0\"\n[users]\nroot = \"pw\"\n").unwrap();
        let c = Config::load(Some(&p), Overrides { port: Some(6000), ..Default::default() }).unwrap();
        assert_eq!(c.port, 6000);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.users.get("root").unwrap(), "pw");
        assert_eq!(c.data_dir, PathBuf::from("./embedb-data"));
    }

    #[test]
    fn bad_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("embedb.toml");
        std::fs::write(&p, "prot = 1\n").unwrap();
        assert!(Config::load(Some(&p), Overrides::default()).is_err());
    }

    #[test]
    fn embed_settings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("embedb.toml");
        std::fs::write(&p, "embed_max_retries = 2\nembed_timeout_secs = 7\nallowed_api_bases = [\"http://a/v1\"]\n").unwrap();
        let c = Config::load(Some(&p), Overrides { embed_max_retries: Some(1), ..Default::default() }).unwrap();
        assert_eq!((c.embed_max_retries, c.embed_timeout_secs, c.embed_concurrency), (1, 7, 4));
        assert_eq!(c.allowed_api_bases, vec!["http://a/v1".to_string()]);
        let o = Overrides { allowed_api_bases: Some("http://b/v1, http://c".into()), ..Default::default() };
        let c = Config::load(Some(&p), o).unwrap();
        assert_eq!(c.allowed_api_bases, vec!["http://b/v1".to_string(), "http://c".to_string()]);
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(c.http_settings(), crate::embed::http::HttpSettings::default());
    }

    #[test]
    fn tls_settings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("embedb.toml");
        std::fs::write(&p, "tls_cert = \"/etc/c.pem\"\ntls_key = \"/etc/k.pem\"\nrequire_secure_transport = true\n").unwrap();
        let c = Config::load(Some(&p), Overrides::default()).unwrap();
        assert_eq!(c.tls_cert, Some(PathBuf::from("/etc/c.pem")));
        assert_eq!(c.tls_key, Some(PathBuf::from("/etc/k.pem")));
        assert!(c.require_secure_transport);
        let o = Overrides { tls_cert: Some("/x/c.pem".into()), require_secure_transport: Some(false), ..Default::default() };
        let c = Config::load(Some(&p), o).unwrap();
        assert_eq!((c.tls_cert, c.tls_key), (Some(PathBuf::from("/x/c.pem")), Some(PathBuf::from("/etc/k.pem"))));
        assert!(!c.require_secure_transport);
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!((c.tls_cert, c.tls_key, c.require_secure_transport), (None, None, false));
    }

    #[test]
    fn users_parse() {
        let u = parse_users("root:,alice:secret").unwrap();
        assert_eq!(u["root"], "");
        assert_eq!(u["alice"], "secret");
    }
}
