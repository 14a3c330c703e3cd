//! System variables: defaults, session and global scope, persistence of globals, and secrets.
//!
//! `SET @@GLOBAL.x = v` writes the catalog key `mGV:x` (so it survives restarts) and updates the
//! in-memory global table; sessions start from the globals. API-key variables
//! (`TIDB_EXP_EMBED_*_API_KEY`) are secrets: they can be set, never read back — every read path
//! (`SELECT @@…`, `SHOW VARIABLES`, logs) goes through `display_value`, which masks them.

use std::collections::BTreeMap;

/// Variables a client may read, with their defaults.
pub fn defaults(version: &str, port: u16, data_dir: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        m.insert(k.to_string(), v.to_string());
    };
    set("version", version);
    set("version_comment", "embedb: a self-hostable database for semantic search, compatible with TiDB");
    set("version_compile_os", "linux");
    set("version_compile_machine", std::env::consts::ARCH);
    set("tidb_server_version", "0");
    set("autocommit", "1");
    // TiDB's default: DML and SELECT … FOR UPDATE lock the rows they touch (`storage::locks`).
    set(TXN_MODE_VAR, "pessimistic");
    set("innodb_lock_wait_timeout", "50");
    set("transaction_isolation", "REPEATABLE-READ");
    set("tx_isolation", "REPEATABLE-READ");
    set("transaction_read_only", "0");
    set("tx_read_only", "0");
    set("sql_mode", "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION");
    set("lower_case_table_names", "2");
    set("max_allowed_packet", "67108864");
    set("character_set_client", "utf8mb4");
    set("character_set_connection", "utf8mb4");
    set("character_set_results", "utf8mb4");
    set("character_set_server", "utf8mb4");
    set("character_set_database", "utf8mb4");
    set("character_set_system", "utf8");
    set("collation_connection", "utf8mb4_bin");
    set("collation_server", "utf8mb4_bin");
    set("collation_database", "utf8mb4_bin");
    set("time_zone", "SYSTEM");
    set("system_time_zone", "UTC");
    set("wait_timeout", "28800");
    set("interactive_timeout", "28800");
    set("net_write_timeout", "60");
    set("net_read_timeout", "30");
    set("sql_select_limit", "18446744073709551615");
    set("sql_auto_is_null", "0");
    set("license", "Apache License 2.0");
    set("init_connect", "");
    set("auto_increment_increment", "1");
    set("auto_increment_offset", "1");
    set("performance_schema", "0");
    set("query_cache_size", "1048576");
    set("query_cache_type", "OFF");
    set("have_ssl", "DISABLED");
    set("have_openssl", "DISABLED");
    set("port", &port.to_string());
    set("hostname", "localhost");
    set("datadir", data_dir);
    set("default_storage_engine", "InnoDB");
    set("storage_engine", "InnoDB");
    set("max_execution_time", "0");
    set("cte_max_recursion_depth", "1000");
    set("max_connections", "0");
    set("sql_safe_updates", "0");
    set("foreign_key_checks", "1");
    set("unique_checks", "1");
    set("sql_quote_show_create", "1");
    set("sql_notes", "1");
    set("sql_warnings", "0");
    set("warning_count", "0");
    set("error_count", "0");
    set("default_week_format", "0");
    set("div_precision_increment", "4");
    set("explicit_defaults_for_timestamp", "1");
    set("tidb_enable_vector_index", "ON");
    set("tidb_isolation_read_engines", "tikv,tiflash,tidb");
    for p in PROVIDERS {
        set(&format!("tidb_exp_embed_{p}_api_key"), "");
    }
    set("tidb_exp_embed_openai_api_base", "");
    // Extension: the HNSW beam width of this session's searches; 0 = each index's own
    // (`COMMENT 'ef_search=…'` on the index, else 64).
    set(crate::index::search::ann::EF_SEARCH_VAR, "0");
    // TiDB's plan cache for unprepared statements (`sql::plan_cache`: repeated vector searches);
    // on by default here. `last_plan_from_cache` tells whether the previous statement used it.
    set(PLAN_CACHE_VAR, "ON");
    set(LAST_PLAN_FROM_CACHE, "0");
    m
}

pub const PLAN_CACHE_VAR: &str = "tidb_enable_non_prepared_plan_cache";
pub const LAST_PLAN_FROM_CACHE: &str = "last_plan_from_cache";

/// Embedding providers whose API keys are variables.
pub const PROVIDERS: &[&str] = &["jina_ai", "openai", "cohere", "gemini", "huggingface", "nvidia_nim"];

/// Variables a client can read but never set.
pub fn is_read_only(name: &str) -> bool {
    matches!(
        name,
        "version" | "version_comment" | "version_compile_os" | "version_compile_machine" | "hostname" | "port" | "datadir"
            | "license" | "system_time_zone" | "have_ssl" | "have_openssl" | "character_set_system" | "lower_case_table_names"
            | "tidb_server_version" | "last_plan_from_cache"
    )
}

/// `tidb_txn_mode`: `pessimistic` (the default, also when empty) or `optimistic`.
pub const TXN_MODE_VAR: &str = "tidb_txn_mode";

/// The widest HNSW beam a session may ask for.
pub const MAX_EF_SEARCH: usize = 10_000;

/// Reject values a variable cannot take (MySQL's 1231).
pub fn validate(name: &str, value: &str) -> crate::error::Result<()> {
    let bad = || {
        crate::error::SqlError::new(1231, "42000", format!("Variable '{name}' can't be set to the value of '{value}'"))
    };
    match name {
        "autocommit" | "sql_safe_updates" | "foreign_key_checks" | "unique_checks" | "transaction_read_only" | "tx_read_only"
        | "sql_auto_is_null" | "sql_quote_show_create" | "sql_notes" | "sql_warnings" => {
            if value != "0" && value != "1" {
                return Err(bad());
            }
        }
        "sql_mode" => {
            const MODES: &[&str] = &[
                "REAL_AS_FLOAT", "PIPES_AS_CONCAT", "ANSI_QUOTES", "IGNORE_SPACE", "ONLY_FULL_GROUP_BY", "NO_UNSIGNED_SUBTRACTION",
                "NO_DIR_IN_CREATE", "ANSI", "NO_AUTO_VALUE_ON_ZERO", "NO_BACKSLASH_ESCAPES", "STRICT_TRANS_TABLES", "STRICT_ALL_TABLES",
                "NO_ZERO_IN_DATE", "NO_ZERO_DATE", "ALLOW_INVALID_DATES", "ERROR_FOR_DIVISION_BY_ZERO", "TRADITIONAL",
                "NO_AUTO_CREATE_USER", "HIGH_NOT_PRECEDENCE", "NO_ENGINE_SUBSTITUTION", "PAD_CHAR_TO_FULL_LENGTH",
                "TIME_TRUNCATE_FRACTIONAL", "DB2", "MAXDB", "MSSQL", "MYSQL323", "MYSQL40", "ORACLE", "POSTGRESQL",
                "NO_KEY_OPTIONS", "NO_TABLE_OPTIONS", "NO_FIELD_OPTIONS",
            ];
            for m in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                if !MODES.contains(&m.to_ascii_uppercase().as_str()) {
                    return Err(bad());
                }
            }
        }
        "cte_max_recursion_depth" => {
            if value.parse::<u32>().is_err() {
                return Err(bad());
            }
        }
        "max_connections" => {
            if !value.parse::<u32>().is_ok_and(|n| n <= 100_000) {
                return Err(bad());
            }
        }
        crate::index::search::ann::EF_SEARCH_VAR => {
            if !value.parse::<usize>().is_ok_and(|n| n <= MAX_EF_SEARCH) {
                return Err(bad());
            }
        }
        PLAN_CACHE_VAR => {
            if !matches!(value.to_ascii_lowercase().as_str(), "on" | "off" | "1" | "0" | "true" | "false") {
                return Err(bad());
            }
        }
        TXN_MODE_VAR => {
            if !matches!(value.to_ascii_lowercase().as_str(), "pessimistic" | "optimistic" | "") {
                return Err(bad());
            }
        }
        "innodb_lock_wait_timeout" => {
            if !value.parse::<u64>().is_ok_and(|n| (1..=3600).contains(&n)) {
                return Err(bad());
            }
        }
        "transaction_isolation" | "tx_isolation" => {
            if !matches!(value.to_ascii_uppercase().as_str(), "READ-UNCOMMITTED" | "READ-COMMITTED" | "REPEATABLE-READ" | "SERIALIZABLE") {
                return Err(bad());
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("tidb_exp_embed_") && n.ends_with("_api_key")
}

/// Only GLOBAL scope exists for these (TiDB: "Variable 'x' is a GLOBAL variable").
pub fn is_global_only(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("tidb_exp_embed_") || n == "max_connections"
}

/// Whether an `sql_mode` value holds `flag` (its comma-separated names, any case).
pub fn sql_mode_has(sql_mode: &str, flag: &str) -> bool {
    sql_mode.split(',').any(|m| m.trim().eq_ignore_ascii_case(flag))
}

/// Whether an `sql_mode` value is strict (STRICT_TRANS_TABLES, STRICT_ALL_TABLES or TRADITIONAL).
pub fn sql_mode_strict(sql_mode: &str) -> bool {
    ["STRICT_TRANS_TABLES", "STRICT_ALL_TABLES", "TRADITIONAL"].iter().any(|f| sql_mode_has(sql_mode, f))
}

/// Whether a statement's text names a secret variable (so neither it nor an error quoting it
/// may be logged).
pub fn mentions_secret(sql: &str) -> bool {
    sql.as_bytes().windows(8).any(|w| w.eq_ignore_ascii_case(b"_api_key"))
}

/// What a read shows: secrets are masked (an empty key stays empty so users can see it is unset).
pub fn display_value(name: &str, value: &str) -> String {
    if is_secret(name) && !value.is_empty() {
        "********".to_string()
    } else {
        value.to_string()
    }
}

/// Normalise a value as MySQL stores it: booleans become 1/0 for the ON/OFF kind of variables.
pub fn normalize(name: &str, value: &str) -> String {
    let n = name.to_ascii_lowercase();
    let boolish = matches!(
        n.as_str(),
        "autocommit" | "sql_safe_updates" | "foreign_key_checks" | "unique_checks" | "transaction_read_only" | "tx_read_only" | "sql_auto_is_null" | "sql_quote_show_create" | "sql_notes" | "sql_warnings"
    );
    if boolish {
        match value.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => return "1".into(),
            "off" | "false" | "0" => return "0".into(),
            _ => {}
        }
    }
    if n == PLAN_CACHE_VAR {
        match value.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => return "ON".into(),
            "off" | "false" | "0" => return "OFF".into(),
            _ => {}
        }
    }
    if n == "max_allowed_packet" {
        // MySQL's range, in whole KiB: a client sizes its own packets by it, so a tiny value
        // would make every later connection unusable.
        if let Ok(v) = value.parse::<u64>() {
            return (v.clamp(1024, 1 << 30) / 1024 * 1024).to_string();
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn secrets_are_masked() {
        assert_eq!(display_value("TIDB_EXP_EMBED_JINA_AI_API_KEY", "jina_123"), "********");
        assert_eq!(display_value("tidb_exp_embed_jina_ai_api_key", ""), "");
        assert_eq!(display_value("version", "x"), "x");
    }
}
