//! The `embedb` command: `embedb serve` runs the server; `embedb version` prints the version.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use embedb::config::{Config, Overrides};
use embedb::session::{server_version, Engine};

#[derive(Parser)]
#[command(name = "embedb", version, about = "A self-hostable SQL database for semantic search (MySQL/TiDB protocol)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve(ServeArgs),
    /// Print the server version string clients see.
    Version,
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
    /// TOML config file (keys: host, port, data_dir, log_level, model_dir, embed_timeout_secs,
    /// embed_max_retries, embed_concurrency, jina_api_base, allowed_api_bases, [users])
    #[arg(long, env = "EMBEDB_CONFIG")]
    config: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("{}", server_version()),
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
            };
            let config = match Config::load(args.config.as_deref(), overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("embedb: {e}");
                    std::process::exit(2);
                }
            };
            init_logging(&config.log_level);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
            if let Err(e) = rt.block_on(serve(config)) {
                tracing::error!("{e}");
                eprintln!("embedb: {e}");
                std::process::exit(1);
            }
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
}

async fn serve(config: Config) -> Result<(), String> {
    let addr = format!("{}:{}", config.host, config.port);
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("cannot create data dir {}: {e}", data_dir.display()))?;
    let engine = Engine::open(config).map_err(|e| format!("cannot open data dir {}: {}", data_dir.display(), e.message))?;
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let shown = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
    tracing::info!("embedb {} listening on {} (MySQL protocol), data in {}", server_version(), listener.local_addr().map(|a| a.to_string()).unwrap_or(addr), shown.display());
    embedb::server::serve(engine, listener, shutdown_signal()).await.map_err(|e| e.to_string())
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
