//! Interop with real clients: the `mysql` command-line client (MariaDB's on
//! Debian) and PyMySQL, run against the toy handler. Each test prints a
//! message and passes when its client is not installed.

mod common;

use std::net::SocketAddr;
use std::process::Output;

use common::*;
use tokio::process::Command;

async fn have(program: &str, args: &[&str]) -> bool {
    matches!(Command::new(program).args(args).output().await, Ok(o) if o.status.success())
}

async fn mysql(addr: SocketAddr, user: &str, password: &str, extra: &[&str], sql: &str) -> Output {
    let mut cmd = Command::new("mysql");
    cmd.args([
        "--no-defaults",
        "-h",
        "127.0.0.1",
        "-P",
        &addr.port().to_string(),
        "-u",
        user,
        "--batch",
        "--raw",
    ]);
    if !password.is_empty() {
        cmd.arg(format!("-p{password}"));
    }
    cmd.args(extra).args(["-e", sql]);
    tokio::time::timeout(std::time::Duration::from_secs(30), cmd.output())
        .await
        .expect("mysql timed out")
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_cli() {
    if !have("mysql", &["--version"]).await {
        println!("SKIPPED: no `mysql` client on PATH");
        return;
    }
    for plugin in ["mysql_native_password", "caching_sha2_password"] {
        let (addr, shared) = start_server(plugin).await;

        let o = mysql(
            addr,
            "alice",
            "secret",
            &["-D", "test"],
            "select 1; ok; select blob; floats; types",
        )
        .await;
        let out = text(&o.stdout);
        assert!(o.status.success(), "{plugin}: {}\n{out}", text(&o.stderr));
        assert!(out.starts_with("1\n1\n"), "{out}");
        assert!(out.contains("body\n\0\u{1}abc\n"), "{out:?}");
        assert!(out.contains("d\tf\te\n1e-05\t0.1\t1e20\n"), "{out}");
        assert!(
            out.contains("-2\t18446744073709551615\t-70000\t-300\t-5\t2.5\t1.5\t2024-02-29\t2024-02-29 13:14:15.123456\t-26:03:04\théllo\t12.34\t2024\t2000-01-01 00:00:00\t7\t0.5\tNULL\tNULL"),
            "{out}"
        );
        assert!(shared
            .lock()
            .unwrap()
            .events
            .iter()
            .any(|e| e == &format!("auth alice {plugin}")));

        let o = mysql(addr, "root", "", &[], "select 1; fail; select 1").await;
        assert!(!o.status.success());
        assert!(
            text(&o.stderr)
                .contains("ERROR 8200 (HY000) at line 1: Unsupported multi schema change"),
            "{}",
            text(&o.stderr)
        );

        let o = mysql(addr, "alice", "bad", &[], "select 1").await;
        assert!(
            text(&o.stderr).contains("ERROR 1045 (28000): Access denied for user 'alice'@'127.0.0.1' (using password: YES)"),
            "{}",
            text(&o.stderr)
        );

        let o = mysql(addr, "root", "", &["-D", "nope"], "select 1").await;
        assert!(
            text(&o.stderr).contains("ERROR 1049 (42000)"),
            "{}",
            text(&o.stderr)
        );

        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(shared.lock().unwrap().panics, 0);
        println!("mysql CLI ok with {plugin}");
    }
}

const PYMYSQL_SCRIPT: &str = r#"
import sys, datetime, decimal
import pymysql
from pymysql.constants import CLIENT
port = int(sys.argv[1])
c = pymysql.connect(host="127.0.0.1", port=port, user="alice", password="secret", database="test",
                    client_flag=CLIENT.MULTI_STATEMENTS)
cur = c.cursor()
cur.execute("select 1")
assert cur.fetchall() == ((1,),), cur.fetchall()
cur.execute("types")
row = cur.fetchone()
want = (-2, 18446744073709551615, -70000, -300, -5, 2.5, 1.5, datetime.date(2024, 2, 29),
        datetime.datetime(2024, 2, 29, 13, 14, 15, 123456), -datetime.timedelta(hours=26, minutes=3, seconds=4),
        "héllo", decimal.Decimal("12.34"), 2024, datetime.datetime(2000, 1, 1), 7.0, "0.5", None, None)
assert row == want, row
cur.execute("select 1; ok; select blob")
assert cur.fetchall() == ((1,),)
assert cur.nextset()
assert cur.rowcount == 3 and cur.lastrowid == 7, (cur.rowcount, cur.lastrowid)
assert cur.nextset()
assert cur.fetchall() == (("\x00\x01abc",),)
assert not cur.nextset()
try:
    cur.execute("conflict")
    raise SystemExit("no error")
except pymysql.err.MySQLError as e:
    assert e.args == (9007, "Write conflict"), e.args
c.ping()
c.select_db("test")
cur.execute("select %s", ("it's",))
assert cur.fetchall() == (("select 'it\\'s'",),), "escaped"
c.close()
try:
    pymysql.connect(host="127.0.0.1", port=port, user="alice", password="wrong")
    raise SystemExit("no error")
except pymysql.err.OperationalError as e:
    assert e.args[0] == 1045, e.args
print("ALL OK")
"#;

/// The project venv's python (`$EMBEDB_VENV`, default `~/.cache/embedb-venv`), else `python3`.
fn python() -> String {
    let venv = std::env::var("EMBEDB_VENV").ok().or_else(|| {
        std::env::var("HOME")
            .ok()
            .map(|h| format!("{h}/.cache/embedb-venv"))
    });
    match venv.map(|v| format!("{v}/bin/python")) {
        Some(p) if std::path::Path::new(&p).exists() => p,
        _ => "python3".to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql() {
    let py = python();
    if !have(&py, &["-c", "import pymysql"]).await {
        println!("SKIPPED: {py} with pymysql not available");
        return;
    }
    for plugin in ["mysql_native_password", "caching_sha2_password"] {
        let (addr, shared) = start_server(plugin).await;
        let o = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            Command::new(&py)
                .args(["-c", PYMYSQL_SCRIPT, &addr.port().to_string()])
                .output(),
        )
        .await
        .expect("python timed out")
        .unwrap();
        assert!(
            o.status.success() && text(&o.stdout).contains("ALL OK"),
            "{plugin}: {}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        assert_eq!(shared.lock().unwrap().panics, 0);
        println!("pymysql ok with {plugin}");
    }
}
