//! Numerics of the local model against sentence-transformers, batch invariance, truncation.

mod common;

use common::{cosine, model, reference};
use tokenizers::Tokenizer;

use embedb_embed_local::{BatchLimits, LocalModel};

#[test]
fn dims_and_limits() {
    let Some(model) = model() else { return };
    assert_eq!(model.dims(), 384);
    assert_eq!(model.max_seq_len(), 256);
    assert!(model.embed(&[]).unwrap().is_empty());
    eprintln!(
        "candle matmul threads: {}",
        embedb_embed_local::compute_threads()
    );
}

#[test]
fn matches_sentence_transformers_reference() {
    let Some(model) = model() else { return };
    let reference = reference();
    assert_eq!(reference.max_seq_length, model.max_seq_len());
    assert!(reference.items.len() >= 12);

    let texts: Vec<&str> = reference.items.iter().map(|i| i.text.as_str()).collect();
    let batch = model.embed(&texts).unwrap();
    let mut worst = 1.0f64;
    for (item, vector) in reference.items.iter().zip(&batch) {
        let ids = model.token_ids(&item.text).unwrap();
        assert_eq!(ids, item.token_ids, "token ids of {:?}", item.text);
        assert_eq!(vector.len(), 384);
        let c = cosine(vector, &item.embedding);
        assert!(c >= 0.9999, "cosine {c} for {:?}", item.text);
        let norm: f64 = vector
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm} for {:?}", item.text);
        worst = worst.min(c);
    }
    eprintln!(
        "worst cosine to the reference over {} texts: {worst:.8}",
        batch.len()
    );
    assert!(
        reference.items.iter().any(|i| i.token_ids.len() == 256),
        "the fixture should include a text truncated at 256 tokens"
    );
}

#[test]
fn seed_query_neighbours() {
    let Some(model) = model() else { return };
    let reference = reference();
    let query = "How to start learning Java programming?";
    let docs: Vec<&str> = reference.items[..5]
        .iter()
        .map(|i| i.text.as_str())
        .collect();
    assert!(
        docs[0].starts_with("Java: Object-oriented"),
        "fixture order changed"
    );

    let q = &model.embed(&[query]).unwrap()[0];
    let d = model.embed(&docs).unwrap();
    let mut by_distance: Vec<(f64, usize)> = Vec::new();
    for (i, doc) in d.iter().enumerate() {
        let id = i + 1;
        let distance = 1.0 - cosine(q, doc);
        let expected = reference.seed_query_cosine_distances[&id.to_string()];
        assert!(
            (distance - expected).abs() < 1e-4,
            "distance of doc {id}: {distance} vs reference {expected}"
        );
        by_distance.push((distance, id));
    }
    by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
    let nearest: Vec<usize> = by_distance.iter().take(2).map(|&(_, id)| id).collect();
    assert_eq!(nearest, vec![1, 4], "nearest docs: {by_distance:?}");
}

fn mixed_texts() -> Vec<String> {
    let reference = reference();
    let mut texts: Vec<String> = reference.items.iter().map(|i| i.text.clone()).collect();
    texts.push("x ".repeat(1000));
    texts.push("Short.".into());
    texts.push("A slightly longer sentence about vector search in SQL databases.".into());
    texts.push("".into());
    texts.push("Ünïcödé again, 日本語のテキスト, and numbers 12345.".into());
    texts
}

#[test]
fn one_by_one_equals_batch() {
    let Some(model) = model() else { return };
    let texts = mixed_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    assert!(refs.contains(&""));
    assert!(refs
        .iter()
        .any(|t| model.token_ids(t).unwrap().len() == 256));

    let batch = model.embed(&refs).unwrap();
    assert_eq!(batch.len(), refs.len());
    for (text, in_batch) in refs.iter().zip(&batch) {
        let alone = &model.embed(&[text]).unwrap()[0];
        let c = cosine(alone, in_batch);
        assert!(
            c >= 0.99999,
            "cosine {c} between alone and batched for {:?}",
            &text[..text.len().min(60)]
        );
    }

    // Duplicates and reversed order give the same vectors too.
    let mut reversed = refs.clone();
    reversed.reverse();
    reversed.extend_from_slice(&refs[..3]);
    let again = model.embed(&reversed).unwrap();
    for (text, v) in reversed.iter().zip(&again) {
        let i = refs.iter().position(|t| t == text).unwrap();
        assert!(cosine(v, &batch[i]) >= 0.99999);
    }
}

#[test]
fn batch_limits_do_not_change_results() {
    let Some(shared) = model() else { return };
    let texts = mixed_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let expected = shared.embed(&refs).unwrap();

    // A second instance with tiny buckets (one text per forward pass), and with one big bucket.
    let mut other = LocalModel::load(common::model_files().unwrap()).unwrap();
    for limits in [
        BatchLimits {
            max_tokens: 1,
            max_texts: 1,
        },
        BatchLimits {
            max_tokens: 1 << 20,
            max_texts: 1000,
        },
    ] {
        other.set_batch_limits(limits);
        let got = other.embed(&refs).unwrap();
        for ((text, a), b) in refs.iter().zip(&got).zip(&expected) {
            let c = cosine(a, b);
            assert!(
                c >= 0.99999,
                "cosine {c} with {limits:?} for {:?}",
                &text[..text.len().min(60)]
            );
        }
    }
}

/// What plain tokenisation of the whole text gives, truncated the way sentence-transformers does.
fn whole_text_ids(tokenizer: &Tokenizer, text: &str, max_len: usize) -> Vec<u32> {
    let encoding = tokenizer.encode(text, false).unwrap();
    let mut ids = vec![101u32];
    ids.extend(encoding.get_ids().iter().take(max_len - 2));
    ids.push(102);
    ids
}

#[test]
fn long_texts_truncate_exactly() {
    let Some(model) = model() else { return };
    let mut tokenizer = Tokenizer::from_file(&common::model_files().unwrap().tokenizer).unwrap();
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();

    let cases = vec![
        "word ".repeat(100_000),
        "Vector databases store embeddings. ".repeat(5_000),
        // accents and combining marks right after the cut points, CJK, no spaces at all, long runs of spaces
        format!("{}{}", "a".repeat(3_000), " \u{0308}x ".repeat(2_000)),
        "東京タワーは高い。".repeat(2_000),
        "x".repeat(50_000),
        format!("{}{}", " ".repeat(20_000), "tail words here ".repeat(100)),
        format!("{} end", "[MASK] ".repeat(1_000)),
        format!(
            "{}{}",
            "supercalifragilistic".repeat(40),
            " short".repeat(2_000)
        ),
    ];
    for text in &cases {
        let expected = whole_text_ids(&tokenizer, text, model.max_seq_len());
        let got = model.token_ids(text).unwrap();
        assert_eq!(
            got,
            expected,
            "ids of a {}-byte text starting {:?}",
            text.len(),
            &text[..40.min(text.len())]
        );
    }
    let huge = "lorem ipsum dolor sit amet ".repeat(400_000); // ~10 MB
    let started = std::time::Instant::now();
    assert_eq!(model.token_ids(&huge).unwrap().len(), 256);
    let tokenised = started.elapsed();
    let v = model.embed(&[huge.as_str()]).unwrap();
    assert_eq!(v[0].len(), 384);
    eprintln!(
        "a {} MB text: tokenised in {tokenised:?}, embedded in {:?}",
        huge.len() >> 20,
        started.elapsed() - tokenised
    );
    assert!(
        tokenised < std::time::Duration::from_secs(1),
        "only a prefix of a long text is tokenised"
    );
}

#[test]
fn shared_between_threads() {
    let Some(model) = model() else { return };
    let texts = [
        "hello world",
        "Java coffee: Bold Indonesian beans with low acidity.",
        "",
    ];
    let expected = model.embed(&texts).unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| model.embed(&texts).unwrap()))
            .collect();
        for handle in handles {
            let got = handle.join().unwrap();
            for (a, b) in got.iter().zip(&expected) {
                assert!(cosine(a, b) >= 0.99999);
            }
        }
    });
}
