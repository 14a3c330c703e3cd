//! Foreign keys as TiDB 8.5 has them: declared in `CREATE TABLE` (table or column form) or
//! `ALTER TABLE … ADD [CONSTRAINT n] FOREIGN KEY`, kept in the child table's catalog entry, shown by
//! `SHOW CREATE TABLE` and `information_schema`, and enforced inside the statement's transaction.
//!
//! A walk through `DELETE FROM parent WHERE id = 1` with `child.pid → parent.id ON DELETE CASCADE`:
//! 1. `dml::delete` finds the tables whose foreign keys reference `parent` ([`referencing`]);
//! 2. before each parent row goes, [`on_parent_delete`] looks up the child rows holding its key
//!    (through the supporting index every foreign key has) and applies the key's action: RESTRICT
//!    and NO ACTION fail with 1451, CASCADE deletes them (and their own children, recursively),
//!    SET NULL clears their key columns;
//! 3. an INSERT or UPDATE of a child row checks that its parent exists ([`Keys::check_child_row`],
//!    1452); [`Keys`] holds what a statement needs, read from the catalog once.
//!
//! `SET foreign_key_checks = 0` turns all of it off (for loads and dumps), as in MySQL.

use datafusion::sql::sqlparser::ast::{ForeignKeyConstraint, ReferentialAction};
use embedb_storage::codec::{self, Datum};
use embedb_storage::Txn;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SqlError};
use crate::sql::catalog::{Catalog, TableInfo};
use crate::sql::types::{self, Target};
use crate::storage::table::{self, Row};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ForeignKeyInfo {
    pub name: String,
    /// The child's columns (lower case), in key order.
    pub columns: Vec<String>,
    pub ref_db: String,
    pub ref_table: String,
    /// The parent's columns (lower case).
    pub ref_columns: Vec<String>,
    /// `RESTRICT`, `CASCADE`, `SET NULL` or `NO ACTION`.
    pub on_delete: String,
    pub on_update: String,
}

fn action(a: &Option<ReferentialAction>) -> String {
    match a {
        Some(ReferentialAction::Cascade) => "CASCADE",
        Some(ReferentialAction::SetNull) => "SET NULL",
        Some(ReferentialAction::NoAction) => "NO ACTION",
        // SET DEFAULT is refused by InnoDB; TiDB treats it as RESTRICT.
        _ => "RESTRICT",
    }
    .to_string()
}

/// The catalog entry for a declared key of table `info` (whose own db is the default).
pub fn from_ast(info: &TableInfo, fk: &ForeignKeyConstraint) -> Result<ForeignKeyInfo> {
    let parts: Vec<String> = fk.foreign_table.0.iter().map(|p| p.to_string().trim_matches('`').to_string()).collect();
    let (ref_db, ref_table) = match parts.as_slice() {
        [t] => (info.db.clone(), t.clone()),
        [d, t] => (d.clone(), t.clone()),
        _ => return Err(SqlError::syntax(format!("near '{}'", fk.foreign_table))),
    };
    if fk.columns.len() != fk.referred_columns.len() || fk.columns.is_empty() {
        return Err(SqlError::new(1239, "42000", format!("Incorrect foreign key definition for '{}': Key reference and table reference don't match", fk.name.as_ref().map(|n| n.value.as_str()).unwrap_or("foreign key without name"))));
    }
    let n = info.foreign_keys.len() + 1;
    let name = fk.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| format!("fk_{}_{n}", info.name.to_lowercase()));
    if info.foreign_keys.iter().any(|f| f.name.eq_ignore_ascii_case(&name)) {
        return Err(SqlError::new(1826, "HY000", format!("Duplicate foreign key constraint name '{name}'")));
    }
    for c in &fk.columns {
        if info.column(&c.value).is_none() {
            return Err(SqlError::new(1072, "42000", format!("Key column '{}' doesn't exist in table", c.value)));
        }
    }
    Ok(ForeignKeyInfo {
        name,
        columns: fk.columns.iter().map(|c| c.value.to_lowercase()).collect(),
        ref_db,
        ref_table,
        ref_columns: fk.referred_columns.iter().map(|c| c.value.to_lowercase()).collect(),
        on_delete: action(&fk.on_delete),
        on_update: action(&fk.on_update),
    })
}

/// Checks a new key against its parent table (which must exist and have the columns, unless
/// checks are off) and gives the child the index the key is looked up by, as InnoDB does.
pub fn validate_and_index(txn: &Txn, info: &mut TableInfo, fk: &ForeignKeyInfo, checks: bool) -> Result<()> {
    if checks {
        let Some(parent) = parent_of(txn, info, fk)? else {
            return Err(SqlError::new(1824, "HY000", format!("Failed to open the referenced table '{}'", fk.ref_table)));
        };
        for c in &fk.ref_columns {
            if parent.column(c).is_none() {
                return Err(SqlError::new(1822, "HY000", format!("Failed to add the foreign key constraint. Missing index for constraint '{}' in the referenced table '{}'", fk.name, fk.ref_table)));
            }
        }
    }
    let covered = info.indexes.iter().any(|i| i.columns.len() >= fk.columns.len() && i.columns[..fk.columns.len()] == fk.columns[..]);
    if !covered {
        super::ddl::add_index(txn, info, Some(fk.name.clone()), fk.columns.clone(), false, false)?;
    }
    Ok(())
}

/// `CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `p` (`id`) ON DELETE CASCADE` for SHOW CREATE.
pub fn show(info: &TableInfo, fk: &ForeignKeyInfo) -> String {
    let cols = |cs: &[String], t: Option<&TableInfo>| {
        cs.iter()
            .map(|c| format!("`{}`", t.and_then(|t| t.column(c)).map(|x| x.name.clone()).unwrap_or_else(|| c.clone())))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let target = if fk.ref_db.eq_ignore_ascii_case(&info.db) { format!("`{}`", fk.ref_table) } else { format!("`{}`.`{}`", fk.ref_db, fk.ref_table) };
    let mut s = format!("  CONSTRAINT `{}` FOREIGN KEY ({}) REFERENCES {target} ({})", fk.name, cols(&fk.columns, Some(info)), cols(&fk.ref_columns, None));
    if fk.on_delete != "RESTRICT" {
        s.push_str(&format!(" ON DELETE {}", fk.on_delete));
    }
    if fk.on_update != "RESTRICT" {
        s.push_str(&format!(" ON UPDATE {}", fk.on_update));
    }
    s
}

fn describe(child: &TableInfo, fk: &ForeignKeyInfo) -> String {
    let list = |cs: &[String]| cs.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    format!(
        "(`{}`.`{}`, CONSTRAINT `{}` FOREIGN KEY ({}) REFERENCES `{}` ({}))",
        child.db,
        child.name,
        fk.name,
        list(&fk.columns),
        fk.ref_table,
        list(&fk.ref_columns)
    )
}

fn child_row_fails(child: &TableInfo, fk: &ForeignKeyInfo) -> SqlError {
    SqlError::new(1452, "23000", format!("Cannot add or update a child row: a foreign key constraint fails {}", describe(child, fk)))
}

fn parent_row_fails(child: &TableInfo, fk: &ForeignKeyInfo) -> SqlError {
    SqlError::new(1451, "23000", format!("Cannot delete or update a parent row: a foreign key constraint fails {}", describe(child, fk)))
}

/// The values of `cols` in `row`, converted to the types of `target`'s columns `target_cols`;
/// None when one is NULL (a key with a NULL matches nothing and is not checked).
fn key_of(info: &TableInfo, row: &Row, cols: &[String], target: &TableInfo, target_cols: &[String]) -> Result<Option<Vec<Datum>>> {
    let mut out = Vec::with_capacity(cols.len());
    for (c, tc) in cols.iter().zip(target_cols) {
        let Some(i) = info.column_index(c) else { return Ok(None) };
        let d = &row.values[i];
        if matches!(d, Datum::Null) {
            return Ok(None);
        }
        let Some(tcol) = target.column(tc) else { return Ok(None) };
        let v = types::datum_to_scalar(d, &info.columns[i].ty)?;
        out.push(types::coerce(&v, &tcol.ty, &Target { column: &tcol.name, row: 1 }).unwrap_or(Datum::Null));
    }
    Ok(Some(out))
}

/// Rows of `t` whose `cols` equal `key` (at most `limit`), through the primary key or an index
/// on those columns when there is one.
fn rows_with(txn: &Txn, t: &TableInfo, cols: &[String], key: &[Datum], limit: usize) -> Result<Vec<Row>> {
    if cols.len() == 1 && t.pk_handle.as_deref() == Some(cols[0].as_str()) {
        let h = match &key[0] {
            Datum::Int(h) => *h,
            Datum::UInt(u) => *u as i64,
            _ => return Ok(vec![]),
        };
        return Ok(table::get_row(txn, t, h)?.into_iter().collect());
    }
    let positions: Vec<usize> = cols.iter().filter_map(|c| t.column_index(c)).collect();
    if positions.len() != cols.len() {
        return Ok(vec![]);
    }
    if let Some(ix) = t.kv_indexes().find(|i| i.columns.len() >= cols.len() && i.columns[..cols.len()] == cols[..]) {
        let prefix = codec::index_key(t.id, ix.id, key, None);
        let end = codec::prefix_end(&prefix);
        let mut out = Vec::new();
        for (k, v) in txn.scan(&prefix, &end, usize::MAX, false)? {
            let h = if v.len() == 8 && ix.columns.len() == cols.len() && ix.unique {
                i64::from_be_bytes(v.as_slice().try_into().expect("8 bytes"))
            } else {
                codec::decode_index_key_handle(&k)?
            };
            if let Some(r) = table::get_row(txn, t, h)? {
                if positions.iter().zip(key).all(|(&p, d)| &r.values[p] == d) {
                    out.push(r);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for r in table::scan_rows(txn, t, usize::MAX)? {
        if positions.iter().zip(key).all(|(&p, d)| &r.values[p] == d) {
            out.push(r);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// The table `fk` of `info` references (`info` itself for a self-reference); None when missing.
fn parent_of(txn: &Txn, info: &TableInfo, fk: &ForeignKeyInfo) -> Result<Option<TableInfo>> {
    if fk.ref_db.eq_ignore_ascii_case(&info.db) && fk.ref_table.eq_ignore_ascii_case(&info.name) {
        return Ok(Some(info.clone()));
    }
    Catalog::new(txn).table(&fk.ref_db, &fk.ref_table)
}

/// A statement's view of the foreign keys around the one table it writes, read from the catalog
/// once (not per row): the parent table of each of the table's keys and, for statements that
/// delete or change rows, the keys of other tables that reference it. Empty when
/// `foreign_key_checks = 0`.
#[derive(Default)]
pub struct Keys {
    parents: Vec<Option<TableInfo>>,
    pub referencing: Vec<(TableInfo, ForeignKeyInfo)>,
}

impl Keys {
    /// Nothing to check (`foreign_key_checks = 0`).
    pub fn off() -> Keys {
        Keys::default()
    }

    pub fn of(txn: &Txn, info: &TableInfo, with_referencing: bool) -> Result<Keys> {
        let parents = info.foreign_keys.iter().map(|fk| parent_of(txn, info, fk)).collect::<Result<_>>()?;
        let referencing = if with_referencing { referencing(txn, info)? } else { Vec::new() };
        Ok(Keys { parents, referencing })
    }

    /// An inserted or updated child row must have its parent (1452).
    pub fn check_child_row(&self, txn: &Txn, info: &TableInfo, row: &Row) -> Result<()> {
        for (fk, parent) in info.foreign_keys.iter().zip(&self.parents) {
            let Some(parent) = parent else { return Err(child_row_fails(info, fk)) };
            let Some(key) = key_of(info, row, &fk.columns, parent, &fk.ref_columns)? else { continue };
            if key.iter().any(|d| matches!(d, Datum::Null)) || rows_with(txn, parent, &fk.ref_columns, &key, 1)?.is_empty() {
                return Err(child_row_fails(info, fk));
            }
        }
        Ok(())
    }
}

/// The foreign keys (with their tables) that reference `parent`.
pub fn referencing(txn: &Txn, parent: &TableInfo) -> Result<Vec<(TableInfo, ForeignKeyInfo)>> {
    let cat = Catalog::new(txn);
    let mut out = Vec::new();
    for t in cat.every_table()? {
        for fk in &t.foreign_keys {
            if fk.ref_db.eq_ignore_ascii_case(&parent.db) && fk.ref_table.eq_ignore_ascii_case(&parent.name) {
                out.push((t.clone(), fk.clone()));
            }
        }
    }
    Ok(out)
}

/// After `before` became `after` (renamed, moved to another database, columns renamed): the
/// foreign keys that reference it, in other tables and in its own catalog entry `after`, follow
/// it, as MySQL's do. Columns are matched by their ids.
pub fn follow_parent(cat: &Catalog, before: &TableInfo, after: &mut TableInfo) -> Result<()> {
    let renamed = |cols: &[String]| -> Vec<String> {
        cols.iter()
            .map(|c| {
                let id = before.column(c).map(|ci| ci.id);
                after.columns.iter().find(|a| Some(a.id) == id).map(|a| a.key()).unwrap_or_else(|| c.clone())
            })
            .collect()
    };
    let points_here = |fk: &ForeignKeyInfo| fk.ref_db.eq_ignore_ascii_case(&before.db) && fk.ref_table.eq_ignore_ascii_case(&before.name);
    let follow = |fk: &mut ForeignKeyInfo| {
        fk.ref_columns = renamed(&fk.ref_columns);
        fk.ref_db = after.db.clone();
        fk.ref_table = after.name.clone();
    };
    let mut own = after.foreign_keys.clone();
    own.iter_mut().filter(|fk| points_here(fk)).for_each(follow);
    for db in cat.databases()? {
        for mut t in cat.tables(&db.name)? {
            if t.id == after.id || !t.foreign_keys.iter().any(points_here) {
                continue;
            }
            t.foreign_keys.iter_mut().filter(|fk| points_here(fk)).for_each(follow);
            cat.put_table(&t)?;
        }
    }
    after.foreign_keys = own;
    Ok(())
}

/// Before `row` of `parent` is deleted: the children's ON DELETE actions.
pub fn on_parent_delete(txn: &Txn, parent: &TableInfo, refs: &[(TableInfo, ForeignKeyInfo)], row: &Row, depth: usize) -> Result<()> {
    if depth > 15 {
        return Err(SqlError::new(3008, "HY000", "Foreign key cascade delete/update exceeds max depth of 15."));
    }
    for (child, fk) in refs {
        let Some(key) = key_of(parent, row, &fk.ref_columns, child, &fk.columns)? else { continue };
        let kids = rows_with(txn, child, &fk.columns, &key, usize::MAX)?;
        // A row that references itself does not stop its own deletion.
        let kids: Vec<Row> = kids.into_iter().filter(|k| !(child.id == parent.id && k.handle == row.handle)).collect();
        if kids.is_empty() {
            continue;
        }
        match fk.on_delete.as_str() {
            "CASCADE" => {
                let grand = referencing(txn, child)?;
                for k in kids {
                    on_parent_delete(txn, child, &grand, &k, depth + 1)?;
                    table::remove_row(txn, child, &k)?;
                }
            }
            "SET NULL" => set_null(txn, child, fk, kids)?,
            _ => return Err(parent_row_fails(child, fk)),
        }
    }
    Ok(())
}

/// Before `old` of `parent` becomes `new`: when a referenced key changes, the ON UPDATE actions.
pub fn on_parent_update(txn: &Txn, parent: &TableInfo, refs: &[(TableInfo, ForeignKeyInfo)], old: &Row, new: &Row) -> Result<()> {
    for (child, fk) in refs {
        let Some(old_key) = key_of(parent, old, &fk.ref_columns, child, &fk.columns)? else { continue };
        let new_key = key_of(parent, new, &fk.ref_columns, child, &fk.columns)?;
        if new_key.as_ref() == Some(&old_key) {
            continue;
        }
        let kids = rows_with(txn, child, &fk.columns, &old_key, usize::MAX)?;
        if kids.is_empty() {
            continue;
        }
        match (fk.on_update.as_str(), new_key) {
            ("CASCADE", Some(nk)) => {
                for k in kids {
                    let mut updated = k.clone();
                    for (c, d) in fk.columns.iter().zip(&nk) {
                        let i = child.column_index(c).expect("key column");
                        updated.values[i] = d.clone();
                    }
                    table::delete_row(txn, child, &k)?;
                    table::put_row(txn, child, &updated)?;
                }
            }
            ("SET NULL", _) | ("CASCADE", None) => set_null(txn, child, fk, kids)?,
            _ => return Err(parent_row_fails(child, fk)),
        }
    }
    Ok(())
}

fn set_null(txn: &Txn, child: &TableInfo, fk: &ForeignKeyInfo, kids: Vec<Row>) -> Result<()> {
    for k in kids {
        let mut updated = k.clone();
        for c in &fk.columns {
            let i = child.column_index(c).expect("key column");
            if !child.columns[i].nullable {
                return Err(parent_row_fails(child, fk));
            }
            updated.values[i] = Datum::Null;
        }
        table::delete_row(txn, child, &k)?;
        table::put_row(txn, child, &updated)?;
    }
    Ok(())
}

/// `ALTER TABLE … ADD FOREIGN KEY` on a table with rows: every row must have its parent.
pub fn check_existing_rows(txn: &Txn, info: &TableInfo) -> Result<()> {
    let keys = Keys::of(txn, info, false)?;
    for r in table::scan_rows(txn, info, usize::MAX)? {
        keys.check_child_row(txn, info, &r)?;
    }
    Ok(())
}
