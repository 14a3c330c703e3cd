//! End-to-end protocol tests: a hand-written client against `serve_connection`
//! with the toy handler from `common`.

mod common;

use common::*;
use embedb_wire::{capabilities as cap, status, Value};

const NATIVE: &str = "mysql_native_password";
const SHA2: &str = "caching_sha2_password";
const EOF41: u32 = CLIENT_BASE; // classic EOF packets
const DEPR: u32 = CLIENT_BASE | cap::DEPRECATE_EOF;

fn events(shared: &SharedRef) -> Vec<String> {
    shared.lock().unwrap().events.clone()
}

fn no_panics(shared: &SharedRef) {
    assert_eq!(
        shared.lock().unwrap().panics,
        0,
        "a connection task panicked"
    );
}

async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

#[tokio::test]
async fn greeting_and_login_without_password() {
    let (addr, shared) = start_server(NATIVE).await;
    let (mut c, g) = Client::tcp(addr).await;
    assert_eq!(g.protocol, 10);
    assert_eq!(g.version, "8.0.11-TiDB-v8.5.0-embedb-test");
    assert_eq!(g.connection_id, 1);
    assert_eq!(g.scramble.len(), 20);
    assert!(g.scramble.iter().all(|&b| b != 0));
    assert_eq!(g.charset, 46);
    assert_eq!(g.status, status::AUTOCOMMIT);
    assert_eq!(g.plugin, NATIVE);
    for bit in [
        cap::LONG_PASSWORD,
        cap::FOUND_ROWS,
        cap::LONG_FLAG,
        cap::CONNECT_WITH_DB,
        cap::PROTOCOL_41,
        cap::TRANSACTIONS,
        cap::SECURE_CONNECTION,
        cap::MULTI_STATEMENTS,
        cap::MULTI_RESULTS,
        cap::PS_MULTI_RESULTS,
        cap::PLUGIN_AUTH,
        cap::PLUGIN_AUTH_LENENC_CLIENT_DATA,
        cap::CONNECT_ATTRS,
        cap::DEPRECATE_EOF,
    ] {
        assert!(g.caps & bit != 0, "missing capability {bit:#x}");
    }
    assert_eq!(g.caps & cap::SSL, 0);
    let ok = c.login(&g, "root", "", NATIVE, None, DEPR).await.unwrap();
    assert_eq!(ok.header, 0);
    assert_eq!(ok.status, status::AUTOCOMMIT);
    assert!(!c.switched && !c.fast_auth);
    assert!(matches!(c.ping().await, Reply::Ok(_)));
    c.command(&[0x01]).await; // COM_QUIT
    assert!(c.read_packet().await.is_none());
    settle().await;
    let ev = events(&shared);
    assert_eq!(
        ev,
        [
            "auth root mysql_native_password",
            "connect root None found_rows=false",
            "disconnect"
        ]
    );
    assert_eq!(shared.lock().unwrap().finished, [Ok(())]);
    no_panics(&shared);
}

#[tokio::test]
async fn native_password_with_database_and_found_rows() {
    let (addr, shared) = start_server(NATIVE).await;
    let (mut c, g) = Client::tcp(addr).await;
    c.login(
        &g,
        "alice",
        "secret",
        NATIVE,
        Some("test"),
        EOF41 | cap::FOUND_ROWS,
    )
    .await
    .unwrap();
    let r = c.query("select 1").await;
    assert_eq!(r[0].text_rows(), vec![vec![Some(b"1".to_vec())]]);
    assert!(events(&shared).contains(&"connect alice Some(\"test\") found_rows=true".to_string()));
    no_panics(&shared);
}

#[tokio::test]
async fn wrong_password_is_1045_and_closes() {
    let (addr, shared) = start_server(NATIVE).await;
    for (user, pw, using) in [
        ("alice", "wrong", "YES"),
        ("alice", "", "NO"),
        ("root", "x", "YES"),
        ("mallory", "", "NO"),
    ] {
        let (mut c, g) = Client::tcp(addr).await;
        let e = c.login(&g, user, pw, NATIVE, None, DEPR).await.unwrap_err();
        assert_eq!(e.code, 1045);
        assert_eq!(e.state, "28000");
        assert_eq!(
            e.message,
            format!("Access denied for user '{user}'@'127.0.0.1' (using password: {using})")
        );
        assert!(c.read_packet().await.is_none(), "connection must be closed");
    }
    // Same through caching_sha2.
    let e = Client::connect(addr, "alice", "nope", SHA2, DEPR)
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, 1045);
    settle().await;
    assert!(!events(&shared).iter().any(|e| e.starts_with("connect")));
    no_panics(&shared);
}

#[tokio::test]
async fn on_connect_error_is_sent() {
    let (addr, shared) = start_server(NATIVE).await;
    let (mut c, g) = Client::tcp(addr).await;
    let e = c
        .login(&g, "root", "", NATIVE, Some("nope"), DEPR)
        .await
        .unwrap_err();
    assert_eq!(
        (e.code, e.state.as_str(), e.message.as_str()),
        (1049, "42000", "Unknown database 'nope'")
    );
    assert!(c.read_packet().await.is_none());
    no_panics(&shared);
}

#[tokio::test]
async fn caching_sha2_via_auth_switch() {
    let (addr, shared) = start_server(SHA2).await;
    // The client answers for a plugin we cannot verify, so the server switches.
    let (mut c, g) = Client::tcp(addr).await;
    assert_eq!(g.plugin, SHA2);
    c.login(&g, "alice", "secret", "sha256_password", None, DEPR)
        .await
        .unwrap();
    assert!(c.switched && c.fast_auth);
    assert_eq!(c.auth_plugin, SHA2);
    assert!(matches!(c.ping().await, Reply::Ok(_)));
    assert!(events(&shared).contains(&"auth alice caching_sha2_password".to_string()));

    // Empty password through the switch: no fast-auth byte, straight OK.
    let (mut c, g) = Client::tcp(addr).await;
    c.login(&g, "root", "", "mysql_clear_password", None, EOF41)
        .await
        .unwrap();
    assert!(c.switched && !c.fast_auth);

    // Wrong password through the switch.
    let (mut c, g) = Client::tcp(addr).await;
    let e = c
        .login(&g, "alice", "secreT", "sha256_password", None, DEPR)
        .await
        .unwrap_err();
    assert_eq!(e.code, 1045);
    no_panics(&shared);
}

#[tokio::test]
async fn caching_sha2_directly_and_native_via_switch() {
    let (addr, shared) = start_server(NATIVE).await;
    // caching_sha2 answers are usable even when the default is native.
    let c = Client::connect(addr, "alice", "secret", SHA2, DEPR)
        .await
        .unwrap();
    assert!(!c.switched && c.fast_auth);
    // An unusable plugin is switched to the default (native).
    let (mut c, g) = Client::tcp(addr).await;
    c.login(&g, "alice", "secret", "mysql_clear_password", None, DEPR)
        .await
        .unwrap();
    assert!(c.switched && !c.fast_auth);
    assert_eq!(c.auth_plugin, NATIVE);
    no_panics(&shared);
}

fn expected_blob_def() -> Vec<u8> {
    let mut d = Vec::new();
    for s in ["def", "test", "t", "docs", "body", "content"] {
        d.push(s.len() as u8);
        d.extend_from_slice(s.as_bytes());
    }
    d.push(0x0c);
    d.extend_from_slice(&[46, 0]); // utf8mb4_bin
    d.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // length
    d.push(0xfb); // LONG_BLOB
    d.extend_from_slice(&[0x11, 0x00]); // BLOB | NOT_NULL, BINARY (0x80) clear
    d.push(0); // decimals
    d.extend_from_slice(&[0, 0]);
    d
}

#[tokio::test]
async fn column_definition_bytes() {
    let (addr, shared) = start_server(NATIVE).await;
    for caps in [EOF41, DEPR] {
        let mut c = Client::connect(addr, "root", "", NATIVE, caps)
            .await
            .unwrap();
        let r = c.query("select blob").await;
        assert_eq!(r.len(), 1);
        let Reply::Rows {
            columns,
            rows,
            status,
            warnings,
        } = &r[0]
        else {
            panic!("{r:?}")
        };
        assert_eq!(columns.len(), 1);
        assert_eq!(columns[0], expected_blob_def());
        assert_eq!(
            columns[0][columns[0].len() - 5] & 0x80,
            0,
            "binary flag must be clear"
        );
        assert_eq!(rows, &vec![b"\x05\x00\x01abc".to_vec()]);
        assert_eq!((*status, *warnings), (status::AUTOCOMMIT, 0));
    }
    no_panics(&shared);
}

#[tokio::test]
async fn multi_statement_more_results_flags() {
    let (addr, shared) = start_server(NATIVE).await;
    for caps in [EOF41, DEPR] {
        let mut c = Client::connect(addr, "root", "", NATIVE, caps)
            .await
            .unwrap();
        let r = c.query("select 1; ok; select blob").await;
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0].status(),
            status::AUTOCOMMIT | status::MORE_RESULTS_EXISTS
        );
        let Reply::Ok(ok) = &r[1] else {
            panic!("{r:?}")
        };
        assert_eq!(
            (ok.affected, ok.last_id, ok.warnings, ok.info.as_slice()),
            (3, 7, 1, &b"\x02hi"[..])
        );
        assert_eq!(ok.status, status::AUTOCOMMIT | status::MORE_RESULTS_EXISTS);
        assert_eq!(r[2].status(), status::AUTOCOMMIT);

        // An error ends the chain; the connection stays usable.
        let r = c.query("select 1; fail; select 1").await;
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[0].status() & status::MORE_RESULTS_EXISTS,
            status::MORE_RESULTS_EXISTS
        );
        let e = r[1].err();
        assert_eq!((e.code, e.state.as_str()), (8200, "HY000"));
        assert_eq!(e.message, "Unsupported multi schema change");
        assert!(matches!(c.ping().await, Reply::Ok(_)));

        // Status comes from the handler.
        let r = c.query("begin; select 1").await;
        assert_eq!(r[1].status(), status::AUTOCOMMIT | status::IN_TRANS);
        let r = c.query("commit").await;
        assert_eq!(r[0].status(), status::AUTOCOMMIT);
    }
    no_panics(&shared);
}

#[tokio::test]
async fn tidb_error_codes_and_text_values() {
    let (addr, shared) = start_server(NATIVE).await;
    let mut c = Client::connect(addr, "root", "", NATIVE, DEPR)
        .await
        .unwrap();
    let r = c.query("conflict").await;
    let e = r[0].err();
    assert_eq!(
        (e.code, e.state.as_str(), e.message.as_str()),
        (9007, "40001", "Write conflict")
    );
    let r = c.query("floats").await;
    assert_eq!(
        r[0].text_rows(),
        vec![vec![
            Some(b"1e-05".to_vec()),
            Some(b"0.1".to_vec()),
            Some(b"1e20".to_vec())
        ]]
    );
    let r = c.query("types").await;
    let row = &r[0].text_rows()[0];
    let text: Vec<Option<&str>> = row
        .iter()
        .map(|v| v.as_deref().map(|b| std::str::from_utf8(b).unwrap()))
        .collect();
    assert_eq!(
        text,
        [
            Some("-2"),
            Some("18446744073709551615"),
            Some("-70000"),
            Some("-300"),
            Some("-5"),
            Some("2.5"),
            Some("1.5"),
            Some("2024-02-29"),
            Some("2024-02-29 13:14:15.123456"),
            Some("-26:03:04"),
            Some("héllo"),
            Some("12.34"),
            Some("2024"),
            Some("2000-01-01 00:00:00"),
            Some("7"),
            Some("0.5"),
            None,
            None
        ]
    );
    assert!(matches!(&c.query("nocols").await[0], Reply::Ok(ok) if ok.affected == 0));
    assert!(
        matches!(&c.query("empty").await[0], Reply::Rows { rows, columns, .. } if rows.is_empty() && columns.len() == 1)
    );
    assert!(matches!(&c.query("").await[0], Reply::Ok(_)));
    no_panics(&shared);
}

#[tokio::test]
async fn utility_commands() {
    let (addr, shared) = start_server(NATIVE).await;
    for caps in [EOF41, DEPR] {
        let mut c = Client::connect(addr, "root", "", NATIVE, caps)
            .await
            .unwrap();
        // COM_INIT_DB
        c.command(b"\x02test").await;
        assert!(matches!(c.read_reply().await, Reply::Ok(_)));
        c.command(b"\x02nope").await;
        assert_eq!(c.read_reply().await.err().code, 1049);
        // COM_FIELD_LIST: definitions with a NULL default, then EOF / OK(0xfe).
        c.command(b"\x04t\0").await;
        let def = c.read_packet().await.unwrap();
        let mut want = expected_blob_def();
        want.push(0xfb);
        assert_eq!(def, want);
        let end = c.read_packet().await.unwrap();
        assert_eq!(end[0], 0xfe);
        assert_eq!(
            end.len(),
            if caps & cap::DEPRECATE_EOF != 0 { 7 } else { 5 }
        );
        c.command(b"\x04nosuch\0%").await;
        let e = c.read_reply().await;
        assert_eq!((e.err().code, e.err().state.as_str()), (1146, "42S02"));
        // COM_SET_OPTION
        c.command(&[0x1b, 1, 0]).await;
        let p = c.read_packet().await.unwrap();
        assert_eq!(p[0], 0xfe);
        // COM_STATISTICS
        c.command(&[0x09]).await;
        assert!(c.read_packet().await.unwrap().starts_with(b"Uptime:"));
        // COM_PROCESS_KILL
        c.command(&[0x0c, 9, 0, 0, 0]).await;
        assert_eq!(c.read_reply().await.err().code, 1094);
        // Unknown
        c.command(&[0x99, 1, 2]).await;
        let e = c.read_reply().await;
        assert_eq!(
            (
                e.err().code,
                e.err().state.as_str(),
                e.err().message.as_str()
            ),
            (1047, "08S01", "Unknown command")
        );
        // COM_RESET_CONNECTION
        c.command(&[0x1f]).await;
        assert!(matches!(c.read_reply().await, Reply::Ok(_)));
        assert!(matches!(c.ping().await, Reply::Ok(_)));
    }
    let ev = events(&shared);
    assert!(ev.contains(&"init_db test".to_string()) && ev.contains(&"reset".to_string()));
    no_panics(&shared);
}

/// Read a COM_STMT_PREPARE reply: (id, columns, params, column defs).
async fn read_prepare<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    c: &mut Client<S>,
) -> Result<(u32, usize, usize, Vec<Vec<u8>>), ServerErr> {
    let p = c.read_packet().await.unwrap();
    if p[0] == 0xff {
        return Err(parse_err(&p));
    }
    assert_eq!(p.len(), 12);
    let mut cur = Cursor(&p);
    assert_eq!(cur.u8(), 0);
    let id = cur.u32();
    let cols = cur.u16() as usize;
    let params = cur.u16() as usize;
    assert_eq!(cur.u8(), 0);
    assert_eq!(cur.u16(), 0);
    let pdefs = c.read_defs(params).await;
    for d in &pdefs {
        assert_eq!(d[..6], [3, b'd', b'e', b'f', 0, 0]);
    }
    let cdefs = c.read_defs(cols).await;
    Ok((id, cols, params, cdefs))
}

async fn prepare<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    c: &mut Client<S>,
    sql: &str,
) -> Result<(u32, usize, usize, Vec<Vec<u8>>), ServerErr> {
    let mut p = vec![0x16];
    p.extend_from_slice(sql.as_bytes());
    c.command(&p).await;
    read_prepare(c).await
}

fn execute_packet(id: u32, nulls: &[u8], types: Option<&[(u8, u8)]>, values: &[u8]) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.push(0); // flags
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(nulls);
    match types {
        Some(t) => {
            p.push(1);
            for (ty, fl) in t {
                p.extend_from_slice(&[*ty, *fl]);
            }
        }
        None => p.push(0),
    }
    p.extend_from_slice(values);
    p
}

fn lenenc(s: &[u8]) -> Vec<u8> {
    let mut v = vec![s.len() as u8];
    v.extend_from_slice(s);
    v
}

#[tokio::test]
async fn prepare_execute_all_param_types() {
    let (addr, shared) = start_server(NATIVE).await;
    let mut c = Client::connect(addr, "root", "", NATIVE, EOF41)
        .await
        .unwrap();
    let sql = format!("insert into t values ({})", vec!["?"; 21].join(","));
    let (id, cols, params, _) = prepare(&mut c, &sql).await.unwrap();
    assert_eq!((id, cols, params), (1, 0, 21));

    let types: Vec<(u8, u8)> = vec![
        (0x01, 0),
        (0x01, 0x80),
        (0x02, 0),
        (0x0d, 0),
        (0x03, 0),
        (0x09, 0x80),
        (0x08, 0),
        (0x08, 0x80),
        (0x04, 0),
        (0x05, 0),
        (0x0a, 0),
        (0x0c, 0),
        (0x07, 0),
        (0x0b, 0),
        (0xfd, 0),
        (0xfc, 0),
        (0xf6, 0),
        (0xf5, 0),
        (0x06, 0),
        (0xfd, 0),
        (0x0a, 0),
    ];
    let mut v = Vec::new();
    v.push(0xfb); // -5
    v.push(250);
    v.extend_from_slice(&(-300i16).to_le_bytes());
    v.extend_from_slice(&2024u16.to_le_bytes());
    v.extend_from_slice(&(-70000i32).to_le_bytes());
    v.extend_from_slice(&70000u32.to_le_bytes());
    v.extend_from_slice(&i64::MIN.to_le_bytes());
    v.extend_from_slice(&u64::MAX.to_le_bytes());
    v.extend_from_slice(&1.5f32.to_le_bytes());
    v.extend_from_slice(&(-2.25f64).to_le_bytes());
    v.extend_from_slice(&[4, 0xe8, 0x07, 2, 29]);
    v.extend_from_slice(&[11, 0xe8, 0x07, 2, 29, 13, 14, 15]);
    v.extend_from_slice(&123_456u32.to_le_bytes());
    v.extend_from_slice(&[7, 0xd0, 0x07, 1, 1, 12, 0, 0]);
    v.extend_from_slice(&[12, 1, 2, 0, 0, 0, 3, 4, 5, 7, 0, 0, 0]);
    v.extend_from_slice(&lenenc("héllo".as_bytes()));
    v.extend_from_slice(&lenenc(&[0, 1, 2, 255]));
    v.extend_from_slice(&lenenc(b"12.34"));
    v.extend_from_slice(&lenenc(b"{\"a\":1}"));
    // 18: NULL type, 19: NULL bit — no bytes; 20: zero date
    v.push(0);
    let nulls = [0, 0, 0x0c];
    c.command(&execute_packet(id, &nulls, Some(&types), &v))
        .await;
    let r = c.read_reply().await;
    assert!(matches!(&r, Reply::Ok(ok) if ok.affected == 21), "{r:?}");

    let expected = vec![
        Value::Int(-5),
        Value::UInt(250),
        Value::Int(-300),
        Value::Int(2024),
        Value::Int(-70000),
        Value::UInt(70000),
        Value::Int(i64::MIN),
        Value::UInt(u64::MAX),
        Value::Float(1.5),
        Value::Double(-2.25),
        Value::Date {
            year: 2024,
            month: 2,
            day: 29,
        },
        Value::DateTime {
            year: 2024,
            month: 2,
            day: 29,
            hour: 13,
            minute: 14,
            second: 15,
            micro: 123_456,
        },
        Value::DateTime {
            year: 2000,
            month: 1,
            day: 1,
            hour: 12,
            minute: 0,
            second: 0,
            micro: 0,
        },
        Value::Time {
            negative: true,
            days: 2,
            hours: 3,
            minutes: 4,
            seconds: 5,
            micro: 7,
        },
        Value::Bytes("héllo".as_bytes().to_vec()),
        Value::Bytes(vec![0, 1, 2, 255]),
        Value::Decimal("12.34".into()),
        Value::Bytes(b"{\"a\":1}".to_vec()),
        Value::Null,
        Value::Null,
        Value::Date {
            year: 0,
            month: 0,
            day: 0,
        },
    ];
    assert_eq!(
        shared.lock().unwrap().params.last().unwrap(),
        &(id, expected.clone())
    );

    // Re-execute without rebinding: the types are remembered.
    let mut v2 = v.clone();
    v2[0] = 0xff; // -1
    c.command(&execute_packet(id, &nulls, None, &v2)).await;
    assert!(matches!(c.read_reply().await, Reply::Ok(_)));
    let mut expected2 = expected;
    expected2[0] = Value::Int(-1);
    assert_eq!(
        shared.lock().unwrap().params.last().unwrap(),
        &(id, expected2)
    );

    // Close: no reply; later use is an unknown handler.
    c.command(&[0x19, 1, 0, 0, 0]).await;
    c.command(&execute_packet(id, &nulls, None, &v2)).await;
    let e = c.read_reply().await;
    assert_eq!(e.err().code, 1243);
    assert_eq!(
        e.err().message,
        "Unknown prepared statement handler (1) given to mysqld_stmt_execute"
    );
    settle().await;
    assert!(events(&shared).contains(&"close 1".to_string()));
    no_panics(&shared);
}

#[tokio::test]
async fn long_data_and_reset() {
    let (addr, shared) = start_server(NATIVE).await;
    let mut c = Client::connect(addr, "root", "", NATIVE, DEPR)
        .await
        .unwrap();
    let (id, _, params, _) = prepare(&mut c, "insert ?, ?").await.unwrap();
    assert_eq!(params, 2);
    // Executing with no types ever bound is an error.
    c.command(&execute_packet(id, &[0], None, &[])).await;
    assert_eq!(c.read_reply().await.err().code, 1210);

    for chunk in [&b"abc"[..], b"def"] {
        let mut p = vec![0x18];
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&1u16.to_le_bytes());
        p.extend_from_slice(chunk);
        c.command(&p).await; // no reply
    }
    let types = [(0x03, 0), (0xfc, 0)];
    c.command(&execute_packet(
        id,
        &[0],
        Some(&types),
        &42i32.to_le_bytes(),
    ))
    .await;
    assert!(matches!(c.read_reply().await, Reply::Ok(_)));
    assert_eq!(
        shared.lock().unwrap().params.last().unwrap().1,
        vec![Value::Int(42), Value::Bytes(b"abcdef".to_vec())]
    );

    // Long data is consumed by the execute.
    let mut v = 43i32.to_le_bytes().to_vec();
    v.extend_from_slice(b"\x01x");
    c.command(&execute_packet(id, &[0], None, &v)).await;
    assert!(matches!(c.read_reply().await, Reply::Ok(_)));
    assert_eq!(
        shared.lock().unwrap().params.last().unwrap().1,
        vec![Value::Int(43), Value::Bytes(b"x".to_vec())]
    );

    // COM_STMT_RESET drops pending long data.
    let mut p = vec![0x18];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(b"zzz");
    c.command(&p).await;
    let mut p = vec![0x1a];
    p.extend_from_slice(&id.to_le_bytes());
    c.command(&p).await;
    assert!(matches!(c.read_reply().await, Reply::Ok(_)));
    c.command(&execute_packet(id, &[0], None, &v)).await;
    assert!(matches!(c.read_reply().await, Reply::Ok(_)));
    assert_eq!(
        shared.lock().unwrap().params.last().unwrap().1,
        vec![Value::Int(43), Value::Bytes(b"x".to_vec())]
    );
    c.command(&[0x1a, 99, 0, 0, 0]).await;
    assert_eq!(c.read_reply().await.err().code, 1243);

    // Prepare errors come back as ERR.
    let e = prepare(&mut c, "select fail ?").await.unwrap_err();
    assert_eq!((e.code, e.state.as_str()), (1064, "42000"));
    // Statement ids keep increasing; COM_RESET_CONNECTION closes them.
    let (id2, ..) = prepare(&mut c, "select ?").await.unwrap();
    assert_eq!(id2, id + 2);
    c.command(&[0x1f]).await;
    assert!(matches!(c.read_reply().await, Reply::Ok(_)));
    settle().await;
    let ev = events(&shared);
    assert!(ev.contains(&format!("close {id}")) && ev.contains(&format!("close {id2}")));
    no_panics(&shared);
}

#[tokio::test]
async fn binary_result_row() {
    let (addr, shared) = start_server(NATIVE).await;
    for caps in [EOF41, DEPR] {
        let mut c = Client::connect(addr, "root", "", NATIVE, caps)
            .await
            .unwrap();
        let (id, cols, params, cdefs) = prepare(&mut c, "types").await.unwrap();
        assert_eq!((cols, params, cdefs.len()), (18, 0, 18));
        c.command(&execute_packet(id, &[], None, &[])).await;
        let r = c.read_reply().await;
        let Reply::Rows {
            columns,
            rows,
            status: st,
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(columns.len(), 18);
        assert_eq!(st, status::AUTOCOMMIT);
        // Column "i" is a DATETIME: type byte 0x0c, binary collation.
        let i = &columns[8];
        assert_eq!(i[i.len() - 12..i.len() - 10], [63, 0]);
        assert_eq!(i[i.len() - 6], 0x0c);

        let mut want = vec![0x00, 0x00, 0x00, 0x0c];
        want.extend_from_slice(&(-2i64).to_le_bytes());
        want.extend_from_slice(&u64::MAX.to_le_bytes());
        want.extend_from_slice(&(-70000i32).to_le_bytes());
        want.extend_from_slice(&(-300i16).to_le_bytes());
        want.push(0xfb);
        want.extend_from_slice(&2.5f64.to_le_bytes());
        want.extend_from_slice(&1.5f32.to_le_bytes());
        want.extend_from_slice(&[4, 0xe8, 0x07, 2, 29]);
        want.extend_from_slice(&[11, 0xe8, 0x07, 2, 29, 13, 14, 15, 0x40, 0xe2, 0x01, 0x00]);
        want.extend_from_slice(&[8, 1, 1, 0, 0, 0, 2, 3, 4]);
        want.extend_from_slice(&lenenc("héllo".as_bytes()));
        want.extend_from_slice(&lenenc(b"12.34"));
        want.extend_from_slice(&2024u16.to_le_bytes());
        want.extend_from_slice(&[4, 0xd0, 0x07, 1, 1]);
        want.extend_from_slice(&7f64.to_le_bytes());
        want.extend_from_slice(&lenenc(b"0.5"));
        assert_eq!(rows, vec![want]);
    }
    no_panics(&shared);
}

#[tokio::test]
async fn packets_over_16_mib_round_trip() {
    let (addr, shared) = start_server(NATIVE).await;
    let mut c = Client::connect(addr, "root", "", NATIVE, DEPR)
        .await
        .unwrap();
    // Exactly 0xffffff payload bytes (needs the trailing empty packet) and 17 MiB.
    for total in [0xff_ffff, 17 << 20] {
        let mut sql = String::from("/*big*/");
        sql.push_str(&"x".repeat(total - 1 - sql.len()));
        let r = c.query(&sql).await;
        let rows = r[0].text_rows();
        assert_eq!(
            rows[0][0].as_deref(),
            Some(sql.len().to_string().as_bytes())
        );
        assert!(
            rows[0][1].as_deref() == Some(sql.as_bytes()),
            "echoed body differs"
        );
        assert!(matches!(c.ping().await, Reply::Ok(_)));
    }
    no_panics(&shared);
}

#[tokio::test]
async fn oversized_packet_ends_connection() {
    let (addr, shared) = start_server(NATIVE).await;
    let mut c = Client::connect(addr, "root", "", NATIVE, DEPR)
        .await
        .unwrap();
    let mut p = vec![0x03];
    p.resize(embedb_wire::MAX_ALLOWED_PACKET + (1 << 20), b'x');
    c.seq = 0;
    let _ = c.write_packet(&p).await; // the server may hang up mid-way
    // Its error follows the last packet it read, which may be before the last one written.
    if let Some(reply) = c.read_packet_any_seq().await {
        assert_eq!(parse_err(&reply).code, 1153);
    }
    settle().await;
    let s = shared.lock().unwrap();
    assert_eq!(s.panics, 0);
    assert_eq!(s.finished.len(), 1);
    assert!(s.finished[0].is_err());
}

#[tokio::test]
async fn malformed_commands_get_errors() {
    let (addr, shared) = start_server(NATIVE).await;
    let mut c = Client::connect(addr, "root", "", NATIVE, DEPR)
        .await
        .unwrap();
    c.command(&[]).await;
    assert_eq!(c.read_reply().await.err().code, 1835);
    c.command(&[0x17, 1]).await;
    assert_eq!(c.read_reply().await.err().code, 1835);
    c.command(&[0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0]).await;
    assert_eq!(c.read_reply().await.err().code, 1243);
    let (id, ..) = prepare(&mut c, "x ? ?").await.unwrap();
    // Truncated: NULL bitmap but no bound flag.
    let mut p = vec![0x17];
    p.extend_from_slice(&id.to_le_bytes());
    p.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
    c.command(&p).await;
    assert_eq!(c.read_reply().await.err().code, 1835);
    // Types bound but values cut short.
    c.command(&execute_packet(
        id,
        &[0],
        Some(&[(0x08, 0), (0xfd, 0)]),
        &[1, 2, 3],
    ))
    .await;
    assert_eq!(c.read_reply().await.err().code, 1210);
    // Unknown parameter type.
    c.command(&execute_packet(
        id,
        &[0],
        Some(&[(0x42, 0), (0xfd, 0)]),
        &[1, 2, 3],
    ))
    .await;
    assert_eq!(c.read_reply().await.err().code, 1210);
    // Lenenc string claiming more bytes than present.
    c.command(&execute_packet(
        id,
        &[0],
        Some(&[(0xfd, 0), (0xfd, 0)]),
        &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    ))
    .await;
    assert_eq!(c.read_reply().await.err().code, 1210);
    // No replies for these.
    c.command(&[0x18, 1]).await;
    c.command(&[0x18, 9, 9, 9, 9, 0, 0, b'x']).await;
    c.command(&[0x19]).await;
    c.command(&[0x19, 7, 7, 7, 7]).await;
    // Missing NUL is tolerated.
    c.command(b"\x04t").await;
    assert!(c.read_packet().await.unwrap().starts_with(b"\x03def"));
    assert_eq!(c.read_packet().await.unwrap()[0], 0xfe);
    c.command(&[0x0c, 1]).await;
    assert_eq!(c.read_reply().await.err().code, 1835);
    c.command(&[0x1b]).await;
    assert_eq!(c.read_reply().await.err().code, 1835);
    c.command(&[0x03, 0xff, 0xfe, b';', b'o', b'k']).await; // invalid UTF-8 is decoded lossily
    let r = c.read_reply().await;
    assert_eq!(
        r.text_rows(),
        vec![vec![Some("\u{fffd}\u{fffd}".as_bytes().to_vec())]]
    );
    assert!(matches!(c.read_reply().await, Reply::Ok(_)));
    assert!(matches!(c.ping().await, Reply::Ok(_)));
    no_panics(&shared);
}

#[tokio::test]
async fn malformed_handshakes_are_refused() {
    let (addr, shared) = start_server(NATIVE).await;
    for bad in [&b""[..], b"\x01\x02\x03", &[0u8; 40][..]] {
        let (mut c, _) = Client::tcp(addr).await;
        c.write_packet(bad).await.unwrap();
        let p = c.read_packet().await.unwrap();
        assert_eq!(parse_err(&p).code, 1043);
        assert!(c.read_packet().await.is_none());
    }
    // SSLRequest while TLS is off.
    let (mut c, _) = Client::tcp(addr).await;
    let mut p = (CLIENT_BASE | cap::SSL).to_le_bytes().to_vec();
    p.extend_from_slice(&[0; 28]);
    c.write_packet(&p).await.unwrap();
    assert_eq!(parse_err(&c.read_packet().await.unwrap()).code, 1043);
    // Hang up mid-header and mid-payload.
    let (mut c, _) = Client::tcp(addr).await;
    use tokio::io::AsyncWriteExt;
    c.s.write_all(&[0xff, 0xff, 0xff, 1, 1, 2]).await.unwrap();
    drop(c);
    let (mut c, _) = Client::tcp(addr).await;
    c.s.write_all(&[5, 0]).await.unwrap();
    drop(c);
    settle().await;
    no_panics(&shared);
}

#[tokio::test]
async fn random_garbage_never_panics() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let shared: SharedRef = Default::default();
    let mut tasks = Vec::new();
    for i in 0..300u32 {
        let (client, server) = tokio::io::duplex(1 << 16);
        tasks.push(spawn_conn(server, i, NATIVE, shared.clone()));
        let mut c = Client::new(client);
        let g = c.read_greeting().await;
        let logged_in = i % 3 != 0;
        if logged_in {
            c.login(
                &g,
                "root",
                "",
                NATIVE,
                None,
                if i % 2 == 0 { DEPR } else { EOF41 },
            )
            .await
            .unwrap();
        }
        // Drain whatever the server says from here on.
        let (mut rd, mut wr) = tokio::io::split(c.s);
        let drain = tokio::spawn(async move {
            let mut sink = vec![0u8; 1 << 16];
            use tokio::io::AsyncReadExt;
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        use tokio::io::AsyncWriteExt;
        for _ in 0..rng.gen_range(1..20) {
            let len = rng.gen_range(0..64usize);
            let mut payload: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if !payload.is_empty() && rng.gen_bool(0.7) {
                // Mostly real commands (never QUIT) with random bodies.
                let cmds = [
                    0x02, 0x03, 0x04, 0x09, 0x0c, 0x0e, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f,
                    0x77,
                ];
                payload[0] = cmds[rng.gen_range(0..cmds.len())];
                if payload[0] == 0x17 && payload.len() >= 5 {
                    payload[1..5].copy_from_slice(&1u32.to_le_bytes());
                }
            }
            let mut frame = if rng.gen_bool(0.95) {
                let l = (payload.len() as u32).to_le_bytes();
                vec![l[0], l[1], l[2], 0]
            } else {
                (0..rng.gen_range(0..4)).map(|_| rng.gen()).collect()
            };
            frame.extend_from_slice(&payload);
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
        drop(wr);
        let _ = drain.await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = shared.lock().unwrap();
    assert_eq!(s.panics, 0);
    assert_eq!(s.finished.len(), 300);
}
