//! Accounts in the KV, beside the catalog: `mUS:{user}\0{host}` → the [`Account`] as JSON.
//! Written in the transaction of the statement that changes them, so a grant commits (or not)
//! like any other write, and read back whole at start and after each change.

use embedb_storage::Txn;

use super::Account;
use crate::error::{Result, SqlError};

pub const PREFIX: &[u8] = b"mUS:";

fn key(user: &str, host: &str) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.extend_from_slice(host.to_lowercase().as_bytes());
    k
}

/// Every stored account.
pub fn load(txn: &Txn) -> Result<Vec<Account>> {
    let end = embedb_storage::codec::prefix_end(PREFIX);
    let rows = txn.scan(PREFIX, &end, usize::MAX, false)?;
    rows.iter()
        .map(|(_, v)| serde_json::from_slice(v).map_err(|e| SqlError::other(format!("account entry is corrupt: {e}"))))
        .collect()
}

pub fn put(txn: &Txn, a: &Account) -> Result<()> {
    let v = serde_json::to_vec(a).map_err(|e| SqlError::other(e.to_string()))?;
    txn.put(key(&a.user, &a.host), v);
    Ok(())
}

pub fn delete(txn: &Txn, user: &str, host: &str) {
    txn.delete(key(user, host));
}
