//! The `embedb` command: `embedb serve` runs the server; `embedb cert` writes a self-signed
//! development certificate for it; `embedb version` prints the version. The binary
//! (`src/main.rs`) and the Python package's `embedb` command both call [`run`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use crate::config::{Config, Overrides};
use crate::session::{server_version, Engine};

#[derive(Parser)]
#[command(name = "embedb", version, about = "A self-hostable SQL database for semantic search (MySQL/TiDB protocol)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve(Box<ServeArgs>),
    /// Write a self-signed development certificate (cert.pem, key.pem) for `serve --tls-cert/--tls-key`.
    Cert(CertArgs),
    /// Print the server version string clients see.
    Version,
    /// Back up a running server's whole database into a directory (`BACKUP DATABASE * TO`).
    Backup(BackupArgs),
    /// Restore a backup into a new data directory (the server is then started on it).
    Restore(RestoreArgs),
}

#[derive(clap::Args)]
struct BackupArgs {
    /// Directory to write the backup into (on the server's machine), created if missing
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Server address [default: 127.0.0.1]
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port [default: 4000]
    #[arg(long, short = 'P', default_value_t = 4000)]
    port: u16,
    /// User with the SUPER privilege [default: root]
    #[arg(long, short = 'u', default_value = "root")]
    user: String,
    /// Password [default: none; or EMBEDB_PASSWORD]
    #[arg(long, short = 'p', env = "EMBEDB_PASSWORD", default_value = "")]
    password: String,
}

#[derive(clap::Args)]
struct RestoreArgs {
    /// Directory holding the backup (embedb.backup), or a cluster's checkpoint backup (s3://bucket/prefix)
    #[arg(long, value_name = "DIR|URL")]
    from: String,
    /// New data directory to restore a file backup into (must not hold a database)
    #[arg(long, value_name = "DIR", required_unless_present = "storage")]
    data_dir: Option<PathBuf>,
    /// New cluster storage to restore a checkpoint backup into: a new prefix of the same bucket (s3://bucket/prefix)
    #[arg(long, value_name = "URL", conflicts_with = "data_dir")]
    storage: Option<String>,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "EMBEDB_HOST")]
    host: Option<String>,
    /// Port to listen on [default: 4000]
    #[arg(long, short = 'P', env = "EMBEDB_PORT")]
    port: Option<u16>,
    /// Directory holding the data [default: ./embedb-data]
    #[arg(long, env = "EMBEDB_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Log level or tracing filter (error, warn, info, debug, trace) [default: info]
    #[arg(long, env = "EMBEDB_LOG_LEVEL")]
    log_level: Option<String>,
    /// Users as `user:password,user2:password2` [default: root with an empty password]
    #[arg(long, env = "EMBEDB_USERS")]
    users: Option<String>,
    /// Directory of local embedding models [default: ~/.cache/embedb/models]
    #[arg(long, env = "EMBEDB_MODEL_DIR")]
    model_dir: Option<PathBuf>,
    /// Remote embedding providers: per-request HTTP timeout in seconds [default: 30]
    #[arg(long, env = "EMBEDB_EMBED_TIMEOUT_SECS")]
    embed_timeout_secs: Option<u64>,
    /// Retries of a provider request on 429, 5xx or a connection error [default: 5]
    #[arg(long, env = "EMBEDB_EMBED_MAX_RETRIES")]
    embed_max_retries: Option<u32>,
    /// Provider requests of one statement in flight at once [default: 4]
    #[arg(long, env = "EMBEDB_EMBED_CONCURRENCY")]
    embed_concurrency: Option<usize>,
    /// Base URL of the Jina AI API [default: Jina's public API]
    #[arg(long, env = "EMBEDB_JINA_API_BASE")]
    jina_api_base: Option<String>,
    /// Comma-separated bases TIDB_EXP_EMBED_OPENAI_API_BASE may point to (OpenAI's own is always allowed) [default: none]
    #[arg(long, env = "EMBEDB_ALLOWED_API_BASES")]
    allowed_api_bases: Option<String>,
    /// Requests[:tokens] per minute by remote provider, e.g. `jina_ai=500:1000000,openai=3000` [default: learnt from the provider's first 429]
    #[arg(long, env = "EMBEDB_EMBED_RATE_LIMITS")]
    embed_rate_limits: Option<String>,
    /// PEM certificate (chain) for TLS; clients may then switch to TLS [default: no TLS]
    #[arg(long, env = "EMBEDB_TLS_CERT", value_name = "PATH")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, env = "EMBEDB_TLS_KEY", value_name = "PATH")]
    tls_key: Option<PathBuf>,
    /// Refuse logins that do not use TLS (error 3159); needs --tls-cert and --tls-key [default: false]
    #[arg(long, env = "EMBEDB_REQUIRE_SECURE_TRANSPORT", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    require_secure_transport: Option<bool>,
    /// Client connections open at once; more get error 1040; 0 = no limit (also `SET GLOBAL max_connections`) [default: 0]
    #[arg(long, env = "EMBEDB_MAX_CONNECTIONS")]
    max_connections: Option<u32>,
    /// File of the key that seals provider keys at rest; keep it apart from backups of the data [default: <data-dir>/secret.key]
    #[arg(long, env = "EMBEDB_SECRET_KEY_FILE", value_name = "PATH")]
    secret_key_file: Option<PathBuf>,
    /// Serve Prometheus metrics over HTTP at http://ADDR/metrics (e.g. 127.0.0.1:9090) [default: off]
    #[arg(long, env = "EMBEDB_METRICS_ADDR", value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// Keep the rows in object storage instead of the data dir: s3://BUCKET/PREFIX (endpoint,
    /// region, credentials and AWS_ALLOW_HTTP from the AWS_* environment), or file:///DIR; the
    /// data dir still holds indexes and keys [default: the data dir]
    #[arg(long, env = "EMBEDB_STORAGE", value_name = "URL")]
    storage: Option<String>,
    /// Run as one node of a cluster: one writer (holding a lease in etcd) and readers, all on
    /// --storage; every node serves MySQL clients and forwards writes to the writer [default: false]
    #[arg(long, env = "EMBEDB_CLUSTER", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    cluster: Option<bool>,
    /// etcd members for --cluster, comma-separated (http://127.0.0.1:2379,…)
    #[arg(long, env = "EMBEDB_ETCD", value_name = "URLS")]
    etcd: Option<String>,
    /// This node's name in the cluster [default: HOST:PORT]
    #[arg(long, env = "EMBEDB_NODE_NAME")]
    node_name: Option<String>,
    /// Address other nodes reach this node's MySQL port at [default: HOST:PORT]
    #[arg(long, env = "EMBEDB_ADVERTISE", value_name = "HOST:PORT")]
    advertise: Option<String>,
    /// Seconds the writer lease lasts without renewal; failover takes about this long [default: 3]
    #[arg(long, env = "EMBEDB_LEASE_TTL_SECS")]
    lease_ttl_secs: Option<u64>,
    /// TOML config file (keys: host, port, data_dir, log_level, model_dir, embed_timeout_secs,
    /// embed_max_retries, embed_concurrency, jina_api_base, allowed_api_bases, tls_cert, tls_key,
    /// require_secure_transport, max_connections, secret_key_file, metrics_addr, storage, cluster,
    /// etcd, node_name, advertise, lease_ttl_secs, [users])
    #[arg(long, env = "EMBEDB_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct CertArgs {
    /// Directory to write cert.pem and key.pem into (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Another host name or IP address the certificate is valid for (repeatable);
    /// localhost, 127.0.0.1 and ::1 are always included
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// Replace existing cert.pem / key.pem
    #[arg(long)]
    force: bool,
}

/// `embedb backup`: asks the server to write a backup, and prints where and how big.
fn backup(args: &BackupArgs) -> i32 {
    let dir = match std::path::absolute(&args.to) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("embedb: {}: {e}", args.to.display());
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("embedb: {e}");
            return 1;
        }
    };
    let sql = format!("BACKUP DATABASE * TO 'local://{}'", dir.display().to_string().replace('\'', "''"));
    let addr = format!("{}:{}", args.host, args.port);
    let out = rt.block_on(async {
        let mut c = embedb_wire::client::Client::connect(&addr, &args.user, &args.password, None).await?;
        let r = c.query(&sql).await;
        c.quit().await;
        r
    });
    match out {
        Ok(responses) => match responses.into_iter().next() {
            Some(embedb_wire::Response::ResultSet { rows, .. }) => {
                let cell = |i: usize| match rows.first().and_then(|r| r.get(i)) {
                    Some(embedb_wire::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                };
                println!("backup of snapshot {} written to {} ({} bytes)", cell(2), dir.join(crate::backup::FILE_NAME).display(), cell(1));
                0
            }
            Some(embedb_wire::Response::Error(e)) => {
                eprintln!("embedb: backup failed: {} ({})", e.message, e.code);
                1
            }
            _ => {
                eprintln!("embedb: backup: unexpected answer from the server");
                1
            }
        },
        Err(e) => {
            eprintln!("embedb: backup: {addr}: {e}");
            1
        }
    }
}

/// Runs the command `args` (the program name first) and returns its exit status.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.command {
        Command::Version => println!("{}", server_version()),
        Command::Backup(args) => return backup(&args),
        Command::Restore(args) => {
            let done = match (&args.data_dir, &args.storage) {
                (Some(dir), _) => crate::backup::restore(std::path::Path::new(&args.from), dir)
                    .map(|keys| format!("restored {keys} keys into {}; start it with: embedb serve --data-dir {}", dir.display(), dir.display())),
                (None, Some(url)) => crate::backup::restore_checkpoint(&args.from, url)
                    .map(|head| format!("restored the checkpoint backup (log entry {head}) into {url}; start a cluster on it with: embedb serve --cluster --storage {url} …")),
                (None, None) => Err("give --data-dir DIR (a file backup) or --storage s3://… (a checkpoint backup)".into()),
            };
            match done {
                Ok(said) => println!("{said}"),
                Err(e) => {
                    eprintln!("embedb: restore failed: {e}");
                    return 1;
                }
            }
        }
        Command::Cert(args) => {
            if let Err(e) = write_cert(&args) {
                eprintln!("embedb: {e}");
                return 1;
            }
        }
        Command::Serve(args) => {
            let overrides = Overrides {
                host: args.host,
                port: args.port,
                data_dir: args.data_dir,
                log_level: args.log_level,
                users: args.users,
                model_dir: args.model_dir,
                embed_timeout_secs: args.embed_timeout_secs,
                embed_max_retries: args.embed_max_retries,
                embed_concurrency: args.embed_concurrency,
                jina_api_base: args.jina_api_base,
                allowed_api_bases: args.allowed_api_bases,
                embed_rate_limits: args.embed_rate_limits,
                tls_cert: args.tls_cert,
                tls_key: args.tls_key,
                require_secure_transport: args.require_secure_transport,
                max_connections: args.max_connections,
                secret_key_file: args.secret_key_file,
                metrics_addr: args.metrics_addr,
                storage: args.storage,
                cluster: args.cluster,
                etcd: args.etcd,
                node_name: args.node_name,
                advertise: args.advertise,
                lease_ttl_secs: args.lease_ttl_secs,
            };
            let config = match Config::load(args.config.as_deref(), overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("embedb: {e}");
                    return 2;
                }
            };
            init_logging(&config.log_level);
            // Statements run on these workers; their stack bounds how deep an expression may nest.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(crate::sql::parser::STATEMENT_STACK_BYTES)
                .build()
                .expect("tokio runtime");
            let result = rt.block_on(serve(config));
            // A statement still running (one busy in the planner, say) must not hold the
            // process open: committed data is durable, so the rest is dropped.
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
            if let Err(e) = result {
                tracing::error!("{e}");
                eprintln!("embedb: {e}");
                return 1;
            }
        }
    }
    0
}

fn init_logging(level: &str) {
    // The SQL parser logs each statement's text at debug level, and a statement may carry a
    // provider key (`SET GLOBAL …_API_KEY = '…'`); DataFusion logs plans with their literals at debug
    // level. Theirs stop at warnings and at info whatever the level.
    let quiet = "sqlparser=warn,datafusion=info";
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},{quiet}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info,{quiet}")));
    // A second `run` in one process (the Python package) keeps the first's subscriber.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

async fn serve(config: Config) -> Result<(), String> {
    let addr = format!("{}:{}", config.host, config.port);
    // Before opening the store: a bad certificate should fail fast and say which file.
    let opts = crate::server::wire_options(&config)?;
    let tls_note = match (&config.tls_cert, opts.require_secure_transport) {
        (Some(cert), true) => format!("TLS on (certificate {}), required for every login", cert.display()),
        (Some(cert), false) => format!("TLS on (certificate {}), optional", cert.display()),
        (None, _) => "TLS off (no --tls-cert)".to_string(),
    };
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
    let engine = Engine::open(config).map_err(|e| format!("cannot open data dir {}: {}", data_dir.display(), e.message))?;
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    if let Some(maddr) = engine.config.metrics_addr.clone() {
        let mlistener = tokio::net::TcpListener::bind(&maddr).await.map_err(|e| format!("cannot listen on {maddr} for metrics: {e}"))?;
        tracing::info!("metrics at http://{}/metrics", mlistener.local_addr().map(|a| a.to_string()).unwrap_or(maddr));
        tokio::spawn(crate::server::metrics::serve(engine.clone(), mlistener));
    }
    let shown = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
    tracing::info!("embedb {} listening on {} (MySQL protocol), data in {}", server_version(), listener.local_addr().map(|a| a.to_string()).unwrap_or(addr), shown.display());
    tracing::info!("{tls_note}");
    crate::server::serve(engine.clone(), listener, opts, shutdown_signal()).await.map_err(|e| e.to_string())?;
    engine.shutdown();
    Ok(())
}

/// `embedb cert`: write the pair and say how to use it.
fn write_cert(args: &CertArgs) -> Result<(), String> {
    use crate::server::tls;
    let cert = tls::dev_certificate(&args.hosts)?;
    tls::write_dev_certificate(&args.out, &cert, args.force)?;
    let dir = std::fs::canonicalize(&args.out).unwrap_or_else(|_| args.out.clone());
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    println!("wrote {} and {}", c.display(), k.display());
    println!("self-signed, valid for {} until {} (for development only)", cert.names.join(", "), cert.expires);
    println!();
    println!("serve with TLS:");
    println!("  embedb serve --tls-cert {} --tls-key {}", c.display(), k.display());
    println!("  (add --require-secure-transport to refuse connections without TLS)");
    println!("connect, trusting this certificate:");
    println!("  mysql -h 127.0.0.1 -P 4000 -u root --ssl --ssl-ca {} --ssl-verify-server-cert", c.display());
    println!("  pymysql.connect(host=\"127.0.0.1\", port=4000, user=\"root\", ssl_ca=\"{}\", ssl_verify_identity=True)", c.display());
    println!("  pytidb / SQLAlchemy URLs with ?ssl_verify_cert=true&ssl_verify_identity=true: SSL_CERT_FILE={}", c.display());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("received SIGINT"),
        _ = term => tracing::info!("received SIGTERM"),
    }
}
