//! Saving and loading an index so that a crash at any instant leaves either the previous or the
//! new state on disk, never a torn mix.
//!
//! `save(path, watermark)` writes three files beside `path`:
//! - `<name>.<gen>.usearch`: usearch's own serialisation of the graph and vectors;
//! - `<name>.<gen>.keys`: the live key list (usearch's binding cannot enumerate keys);
//! - `<name>` itself: a small JSON [`Manifest`] naming that generation, the params, the
//!   caller's watermark (e.g. the commit sequence the index reflects) and checks (sizes, key
//!   count and checksum).
//!
//! Each file is written to `*.tmp`, fsynced and renamed; the manifest is renamed last, after the
//! data files and their directory entry are durable, so the manifest that a reader sees always
//! names complete files of one generation. Older generations are deleted afterwards (a crash
//! before that only leaves garbage, which the next save removes).
//!
//! On start the caller reads the manifest ([`AnnIndex::read_manifest`]) or loads the index
//! ([`AnnIndex::load`]) and replays its log from `watermark`, or rebuilds from the table when the
//! load fails (missing, corrupt, or built with other structural params).

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::index::{usearch_err, AnnIndex};
use crate::keys::KeySet;
use crate::{AnnError, AnnParams};

const FORMAT: u32 = 1;
const KEYS_MAGIC: &[u8; 8] = b"EMBANNK1";

/// The sidecar written last by [`AnnIndex::save`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub params: AnnParams,
    /// Caller-supplied: what the index reflects (e.g. the last applied commit sequence).
    pub watermark: u64,
    pub generation: u64,
    pub len: u64,
    pub tombstones: u64,
    /// File names, relative to the manifest's directory.
    pub graph_file: String,
    pub graph_bytes: u64,
    pub keys_file: String,
    pub keys_checksum: u64,
}

fn corrupt(path: &Path, why: impl std::fmt::Display) -> AnnError {
    AnnError::Corrupt(format!("{}: {why}", path.display()))
}

/// Splits `path` into its directory and file name.
fn dir_and_name(path: &Path) -> Result<(PathBuf, String), AnnError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| AnnError::InvalidParams(format!("index path {} needs a UTF-8 file name", path.display())))?
        .to_string();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

fn tmp_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Order-dependent 64-bit checksum of the key list (FNV-1a over words, then a final mix).
fn checksum(keys: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &k in keys {
        h = (h ^ k).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

fn write_keys(path: &Path, keys: &[u64]) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(KEYS_MAGIC)?;
    out.write_all(&(keys.len() as u64).to_le_bytes())?;
    for &k in keys {
        out.write_all(&k.to_le_bytes())?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn read_keys(path: &Path) -> Result<Vec<u64>, AnnError> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    if bytes.len() < 16 || &bytes[..8] != KEYS_MAGIC {
        return Err(corrupt(path, "not a key list"));
    }
    let count = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let body = &bytes[16..];
    if body.len() != count.saturating_mul(8) {
        return Err(corrupt(path, format!("{} bytes for {count} keys", body.len())));
    }
    Ok(body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect())
}

impl AnnIndex {
    /// Writes the index atomically (see the module docs) with `watermark` recorded in its
    /// manifest at `path`. Mutations wait until it finishes; searches continue.
    pub fn save(&self, path: impl AsRef<Path>, watermark: u64) -> Result<Manifest, AnnError> {
        let path = path.as_ref();
        let (dir, name) = dir_and_name(path)?;

        // Freeze writers so graph, keys and watermark describe the same state; holding the lock
        // until the manifest is in place also orders concurrent saves of this index.
        let w = self.writer.lock();
        let generation = match Self::read_manifest(path) {
            Ok(Some(m)) => m.generation + 1,
            _ => 1,
        };
        let graph_file = format!("{name}.{generation}.usearch");
        let keys_file = format!("{name}.{generation}.keys");
        let graph_path = dir.join(&graph_file);
        let keys_path = dir.join(&keys_file);
        let index = self.index.read();
        let keys = self.keys.read();

        let graph_tmp = tmp_of(&graph_path);
        let graph_tmp_str = graph_tmp
            .to_str()
            .ok_or_else(|| AnnError::InvalidParams(format!("index path {} is not UTF-8", graph_tmp.display())))?;
        index.save(graph_tmp_str).map_err(usearch_err)?;
        File::open(&graph_tmp)?.sync_all()?;
        let graph_bytes = fs::metadata(&graph_tmp)?.len();
        fs::rename(&graph_tmp, &graph_path)?;

        let keys_tmp = tmp_of(&keys_path);
        write_keys(&keys_tmp, keys.as_slice())?;
        fs::rename(&keys_tmp, &keys_path)?;
        sync_dir(&dir)?;

        let manifest = Manifest {
            format: FORMAT,
            params: self.params.clone(),
            watermark,
            generation,
            len: keys.len() as u64,
            tombstones: w.tombstones as u64,
            graph_file,
            graph_bytes,
            keys_file,
            keys_checksum: checksum(keys.as_slice()),
        };
        drop(keys);
        drop(index);

        let manifest_tmp = tmp_of(path);
        {
            let mut f = File::create(&manifest_tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&manifest).expect("manifest serialises"))?;
            f.sync_all()?;
        }
        fs::rename(&manifest_tmp, path)?;
        sync_dir(&dir)?;
        remove_stale_generations(&dir, &name, generation);
        drop(w);
        Ok(manifest)
    }

    /// The manifest at `path`, or `None` if there is none.
    pub fn read_manifest(path: impl AsRef<Path>) -> Result<Option<Manifest>, AnnError> {
        let path = path.as_ref();
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| corrupt(path, e))?;
        if m.format != FORMAT {
            return Err(corrupt(path, format!("format {} (this build reads {FORMAT})", m.format)));
        }
        Ok(Some(m))
    }

    /// Loads the index saved at `path`. `params` must agree with the saved metric, dims,
    /// connectivity and quantization ([`AnnError::ParamsMismatch`] otherwise: rebuild); its
    /// `ef_construction` / `ef_search` replace the saved ones. The manifest's `watermark` says
    /// where to resume replaying.
    pub fn load(path: impl AsRef<Path>, params: &AnnParams) -> Result<(AnnIndex, Manifest), AnnError> {
        let path = path.as_ref();
        params.validate()?;
        let manifest = Self::read_manifest(path)?.ok_or_else(|| {
            AnnError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no index at {}", path.display())))
        })?;
        if !manifest.params.structurally_equal(params) {
            return Err(AnnError::ParamsMismatch {
                saved: Box::new(manifest.params.clone()),
                wanted: Box::new(params.clone()),
            });
        }
        let (dir, _) = dir_and_name(path)?;
        let graph_path = dir.join(&manifest.graph_file);
        let keys_path = dir.join(&manifest.keys_file);

        let graph_bytes = fs::metadata(&graph_path)?.len();
        if graph_bytes != manifest.graph_bytes {
            return Err(corrupt(&graph_path, format!("{graph_bytes} bytes, manifest says {}", manifest.graph_bytes)));
        }
        let keys = read_keys(&keys_path)?;
        if keys.len() as u64 != manifest.len || checksum(&keys) != manifest.keys_checksum {
            return Err(corrupt(&keys_path, "key list does not match the manifest"));
        }
        let keys = KeySet::from_vec(keys).ok_or_else(|| corrupt(&keys_path, "duplicate keys"))?;

        let graph_str = graph_path
            .to_str()
            .ok_or_else(|| AnnError::InvalidParams(format!("index path {} is not UTF-8", graph_path.display())))?;
        let meta = usearch::Index::metadata(graph_str).map_err(|e| corrupt(&graph_path, e))?;
        if meta.dimensions as usize != params.dims
            || meta.count_present != manifest.len
            || meta.count_deleted != manifest.tombstones
        {
            return Err(corrupt(&graph_path, "graph header does not match the manifest"));
        }

        let index = usearch::Index::new(&params.usearch_options()).map_err(usearch_err)?;
        index.load(graph_str).map_err(|e| corrupt(&graph_path, e))?;
        index.change_expansion_add(params.ef_construction);
        index.change_expansion_search(1);
        let threads = AnnIndex::threads_for_load();
        let slots = (manifest.len + manifest.tombstones) as usize;
        index.reserve_capacity_and_threads(index.capacity().max(slots).max(1), threads).map_err(usearch_err)?;
        let loaded = AnnIndex::from_parts(params.clone(), index, keys, manifest.tombstones as usize, threads);
        Ok((loaded, manifest))
    }
}

/// Deletes `<name>.<gen>.{usearch,keys}[.tmp]` for every generation but `keep`. Best effort.
fn remove_stale_generations(dir: &Path, name: &str, keep: u64) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!("{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some(rest) = file.strip_prefix(&prefix) else { continue };
        let rest = rest.strip_suffix(".tmp").unwrap_or(rest);
        let Some((gen, kind)) = rest.split_once('.') else { continue };
        if !(kind == "usearch" || kind == "keys") {
            continue;
        }
        match gen.parse::<u64>() {
            Ok(g) if g != keep => {
                let _ = fs::remove_file(entry.path());
            }
            _ => {}
        }
    }
}
