//! Behaviour of FullTextIndex as the SQL layer will use it: rankings checked by hand on small
//! corpora, BM25 properties, staged writes and commits, persistence with watermarks, CJK, n-grams,
//! hostile query text and concurrent readers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use embedb_fulltext::{FullTextError, FullTextIndex, Parser};

fn index_with(parser: Parser, docs: &[(u64, &str)]) -> FullTextIndex {
    let index = FullTextIndex::in_ram(parser).unwrap();
    for (key, text) in docs {
        index.upsert(*key, Some(text)).unwrap();
    }
    index.commit(1).unwrap();
    index
}

fn keys(hits: &[(u64, f32)]) -> Vec<u64> {
    hits.iter().map(|(k, _)| *k).collect()
}

fn key_set(hits: &[(u64, f32)]) -> HashSet<u64> {
    hits.iter().map(|(k, _)| *k).collect()
}

const ENGLISH: &[(u64, &str)] = &[
    (1, "The quick brown fox jumps over the lazy dog."),
    (2, "A fox! A fox by the river bank, said the ferryman."),
    (3, "Dogs and cats living together in one small house."),
    (4, "The river bank was flooded after the storm last night."),
    (
        5,
        "Quantum entanglement, explained: quantum states and measurement.",
    ),
    (6, "An introduction to quantum computing and its basics."),
    (7, "Storm chasers photograph lightning over the plains."),
];

#[test]
fn english_ranking_matches_hand_checked_order() {
    let index = index_with(Parser::Standard, ENGLISH);
    assert_eq!(index.len(), 7);

    // The rare term twice (doc 5) beats it once (doc 6); nothing else mentions it.
    let hits = index.search("quantum", 10).unwrap();
    assert_eq!(keys(&hits), [5, 6]);

    // Doc 2 has "fox" twice and "river" once; docs 1 and 4 have one of the two words each.
    let hits = index.search("fox river", 10).unwrap();
    assert_eq!(hits[0].0, 2);
    assert_eq!(key_set(&hits), HashSet::from([1, 2, 4]));

    // Case and punctuation in the query do not matter.
    assert_eq!(keys(&index.search("QUANTUM!!!", 10).unwrap()), [5, 6]);

    // "storm" in a short doc (7) and in a longer one (4): both match; the query term "lightning"
    // only in 7 puts it first.
    let hits = index.search("storm lightning", 10).unwrap();
    assert_eq!(keys(&hits), [7, 4]);

    // Top-k cuts the list; k = 0 and unknown words give nothing.
    assert_eq!(keys(&index.search("the", 2).unwrap()).len(), 2);
    assert!(index.search("quantum", 0).unwrap().is_empty());
    assert!(index.search("zebra", 10).unwrap().is_empty());
    assert!(index.search("", 10).unwrap().is_empty());
}

#[test]
fn bm25_scores_are_positive_and_behave() {
    // Same length (5 words), the term 1, 2 and 3 times; filler words are all distinct.
    let index = index_with(
        Parser::Standard,
        &[
            (1, "apple alpha bravo charlie delta"),
            (2, "apple apple echo foxtrot golf"),
            (3, "apple apple apple hotel india"),
            (
                4,
                "apple juliet kilo lima mike november oscar papa quebec romeo sierra tango",
            ),
            (5, "banana uniform victor whiskey xray"),
            (6, "banana yankee zulu one two"),
            (7, "kiwi three four five six"),
        ],
    );
    let score = |q: &str, k: u64| index.score_keys(q, &[k]).unwrap()[0];
    let (s1, s2, s3, s_long) = (
        score("apple", 1),
        score("apple", 2),
        score("apple", 3),
        score("apple", 4),
    );
    assert!(s1 > 0.0);
    assert!(s1 < s2 && s2 < s3, "monotone in tf: {s1} {s2} {s3}");
    assert!(
        s_long < s1,
        "longer doc with the same tf scores lower: {s_long} vs {s1}"
    );
    // Saturation: the third occurrence adds less than the second.
    assert!(s3 - s2 < s2 - s1);
    // A rarer term (kiwi: 1 doc) outscores a commoner one (banana: 2 docs) at equal tf and length.
    assert!(score("kiwi", 7) > score("banana", 5));
    // OR of terms: a query term the doc lacks adds nothing, one it has adds its own score.
    assert_eq!(score("apple kiwi", 3), s3);
    assert!(score("apple kiwi", 7) == score("kiwi", 7));
    assert_eq!(score("apple", 5), 0.0);

    // The three read paths agree on every score.
    let matching = index.matching("apple banana").unwrap();
    assert_eq!(
        matching.keys().copied().collect::<HashSet<_>>(),
        HashSet::from([1, 2, 3, 4, 5, 6])
    );
    let top = index.search("apple banana", 100).unwrap();
    assert_eq!(top.len(), 6);
    let by_key = index
        .score_keys("apple banana", &[1, 2, 3, 4, 5, 6, 7, 999])
        .unwrap();
    for (i, k) in [1u64, 2, 3, 4, 5, 6].iter().enumerate() {
        let from_top = top.iter().find(|(key, _)| key == k).unwrap().1;
        assert_eq!(matching[k], from_top);
        assert_eq!(by_key[i], from_top);
    }
    assert_eq!(&by_key[6..], [0.0, 0.0]);
    // Best first.
    assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
}

#[test]
fn top_k_agrees_with_scoring_every_match() {
    // Few terms take tantivy's pruned top-k, many terms (n-grams) the exhaustive heap; both must
    // equal "score everything, sort, cut".
    let cases = [
        (Parser::Standard, "the fox river storm quantum"),
        (
            Parser::Ngram { min: 2, max: 3 },
            "quantum storms over the river bank",
        ),
    ];
    for (parser, query) in cases {
        let index = index_with(parser, ENGLISH);
        let mut all: Vec<(u64, f32)> = index.matching(query).unwrap().into_iter().collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert!(all.len() >= 4, "{parser}: {all:?}");
        for k in [1, 3, all.len(), all.len() + 5] {
            let top = index.search(query, k).unwrap();
            assert_eq!(top, all[..k.min(all.len())], "{parser} k={k}");
        }
    }
    assert!(
        embedb_fulltext::query_terms(
            Parser::Ngram { min: 2, max: 3 },
            "quantum storms over the river bank"
        )
        .len()
            > 16
    );
}

#[test]
fn equal_scores_are_ordered_by_key() {
    let docs = [
        (30, "same words"),
        (10, "same words"),
        (20, "same words"),
        (40, "same words"),
    ];
    let index = index_with(Parser::Standard, &docs);
    assert_eq!(keys(&index.search("words", 10).unwrap()), [10, 20, 30, 40]);
    // The exhaustive path also breaks ties at the cut by key.
    let ngram = index_with(Parser::Ngram { min: 1, max: 2 }, &docs);
    assert_eq!(
        keys(&ngram.search("same words again and again", 2).unwrap()),
        [10, 20]
    );
}

#[test]
fn upserts_and_deletes_are_staged_until_commit() {
    let index = FullTextIndex::in_ram(Parser::Standard).unwrap();
    assert!(index.is_empty());
    assert_eq!(index.watermark(), 0);
    index.upsert(1, Some("red apple")).unwrap();
    index.upsert(2, Some("green apple")).unwrap();
    // Not committed: invisible.
    assert!(index.search("apple", 10).unwrap().is_empty());
    assert_eq!(index.len(), 0);
    index.commit(10).unwrap();
    assert_eq!(
        key_set(&index.search("apple", 10).unwrap()),
        HashSet::from([1, 2])
    );
    assert_eq!(index.watermark(), 10);

    // Replace row 1, delete row 2: readers keep seeing the old state until the commit.
    index.upsert(1, Some("blue sky")).unwrap();
    index.delete(2).unwrap();
    assert_eq!(
        key_set(&index.search("apple", 10).unwrap()),
        HashSet::from([1, 2])
    );
    assert!(index.search("sky", 10).unwrap().is_empty());
    index.commit(11).unwrap();
    assert!(index.search("apple", 10).unwrap().is_empty());
    assert_eq!(keys(&index.search("sky", 10).unwrap()), [1]);
    assert_eq!(index.len(), 1);

    // NULL text removes; deleting or nulling an absent row is harmless.
    index.upsert(3, None).unwrap();
    index.delete(4).unwrap();
    index.upsert(1, None).unwrap();
    index.commit(12).unwrap();
    assert_eq!(index.len(), 0);
    assert!(index.search("sky", 10).unwrap().is_empty());

    // Several upserts of one key in one commit: the last wins, once.
    index.upsert(5, Some("first version")).unwrap();
    index.upsert(5, Some("second version")).unwrap();
    index.upsert(5, Some("third version")).unwrap();
    index.commit(13).unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!(keys(&index.search("version", 10).unwrap()), [5]);
    assert_eq!(keys(&index.search("third", 10).unwrap()), [5]);
    assert!(index.search("first second", 10).unwrap().is_empty());

    // An empty text is a row that matches nothing.
    index.upsert(6, Some("")).unwrap();
    index.commit(14).unwrap();
    assert_eq!(index.len(), 2);
}

#[test]
fn clear_and_rollback() {
    let index = index_with(Parser::Standard, &[(1, "alpha"), (2, "beta")]);
    index.upsert(3, Some("gamma")).unwrap();
    index.clear().unwrap();
    index.upsert(4, Some("delta alpha")).unwrap();
    // Clearing is staged too.
    assert_eq!(index.len(), 2);
    index.commit(2).unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!(
        keys(&index.search("alpha beta gamma delta", 10).unwrap()),
        [4]
    );

    index.upsert(5, Some("epsilon")).unwrap();
    index.delete(4).unwrap();
    index.rollback().unwrap();
    index.commit(3).unwrap();
    assert_eq!(keys(&index.search("alpha epsilon", 10).unwrap()), [4]);
    assert_eq!(index.watermark(), 3);
}

#[test]
fn persistence_round_trip_with_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx_body");
    {
        let index = FullTextIndex::open_or_create(&path, Parser::Multilingual).unwrap();
        assert_eq!(index.watermark(), 0);
        assert!(index.is_empty());
        for (k, t) in ENGLISH {
            index.upsert(*k, Some(t)).unwrap();
        }
        index.upsert(100, Some("我爱北京天安门")).unwrap();
        index.commit(42).unwrap();
        // Staged after the last commit and never committed: lost, like a crash would lose it.
        index.upsert(200, Some("quantum quantum quantum")).unwrap();
        index.delete(5).unwrap();
    }
    {
        let index = FullTextIndex::open_or_create(&path, Parser::Multilingual).unwrap();
        assert_eq!(index.watermark(), 42);
        assert_eq!(index.len(), 8);
        assert_eq!(keys(&index.search("quantum", 10).unwrap()), [5, 6]);
        assert_eq!(keys(&index.search("北京", 10).unwrap()), [100]);
        index.delete(6).unwrap();
        index.commit(43).unwrap();
    }
    // `open` finds the parser by itself.
    let index = FullTextIndex::open(&path).unwrap();
    assert_eq!(index.parser(), Parser::Multilingual);
    assert_eq!(index.watermark(), 43);
    assert_eq!(keys(&index.search("quantum", 10).unwrap()), [5]);
    // Compaction rewrites segments but keeps the last commit's watermark on disk.
    index.compact().unwrap();
    drop(index);
    let index = FullTextIndex::open(&path).unwrap();
    assert_eq!(index.watermark(), 43);
    assert_eq!(index.len(), 7);
    assert_eq!(keys(&index.search("quantum", 10).unwrap()), [5]);
    drop(index);

    // Another parser over the same files is refused, so the caller knows to rebuild.
    match FullTextIndex::open_or_create(&path, Parser::Ngram { min: 2, max: 3 }) {
        Err(FullTextError::ParserMismatch {
            stored, requested, ..
        }) => {
            assert_eq!(stored, Parser::Multilingual);
            assert_eq!(requested, Parser::Ngram { min: 2, max: 3 });
        }
        other => panic!("expected a parser mismatch, got {:?}", other.err()),
    }
}

#[test]
fn one_writer_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let a = FullTextIndex::open_or_create(dir.path(), Parser::Standard).unwrap();
    let b = FullTextIndex::open_or_create(dir.path(), Parser::Standard).unwrap();
    a.upsert(1, Some("hello")).unwrap();
    // The second writer cannot take the directory's lock while the first holds it.
    assert!(b.upsert(2, Some("world")).is_err());
    a.commit(1).unwrap();
}

const CJK: &[(u64, &str)] = &[
    (1, "イヤホン bluetooth ワイヤレスイヤホン"),
    (2, "完全ワイヤレスイヤホン/マイク付き/防水"),
    (3, "ワイヤレス充電器 スマートフォン対応"),
    (4, "我爱北京天安门"),
    (5, "北方的天气很冷"),
    (6, "数据库是存储数据的系统"),
    (7, "Bluetooth headphones with noise cancelling"),
    (8, "한국어 데이터베이스 검색"),
    (9, "東京タワーの夜景がきれいです"),
];

#[test]
fn multilingual_finds_chinese_japanese_korean() {
    let index = index_with(Parser::Multilingual, CJK);
    // Japanese: the doc with the word twice first, the one with it once second; the doc that only
    // shares the bigram イヤ (inside ワイヤレス) comes last, as an OR of terms should have it.
    let hits = index.search("イヤホン", 10).unwrap();
    assert_eq!(keys(&hits), [1, 2, 3]);
    assert!(
        hits[2].1 < hits[1].1 / 2.0,
        "a one-bigram match scores far lower: {hits:?}"
    );
    // A sentence-like query: the two docs with the whole compound lead.
    let hits = index.search("ワイヤレスイヤホンが欲しい", 10).unwrap();
    assert_eq!(key_set(&hits[..2]), HashSet::from([1, 2]));
    assert_eq!(keys(&index.search("東京", 10).unwrap()), [9]);
    assert_eq!(keys(&index.search("夜景", 10).unwrap()), [9]);
    // Chinese: 北京 is in 4 only, though 北 is also in 5.
    assert_eq!(keys(&index.search("北京", 10).unwrap()), [4]);
    assert_eq!(keys(&index.search("数据", 10).unwrap()), [6]);
    assert_eq!(keys(&index.search("天安门", 10).unwrap()), [4]);
    // Single characters are findable.
    assert_eq!(keys(&index.search("冷", 10).unwrap()), [5]);
    assert_eq!(
        key_set(&index.search("北", 10).unwrap()),
        HashSet::from([4, 5])
    );
    // Korean.
    assert_eq!(keys(&index.search("데이터베이스", 10).unwrap()), [8]);
    // Latin words in the same index, case-insensitively.
    assert_eq!(
        key_set(&index.search("BLUETOOTH", 10).unwrap()),
        HashSet::from([1, 7])
    );
}

#[test]
fn multilingual_does_not_match_garbage() {
    let index = index_with(Parser::Multilingual, CJK);
    for q in [
        "京北",
        "天气预报书",
        "猫",
        "ヤイ",
        "门我",
        "데베",
        "blue",
        "tooth",
    ] {
        let hits = index.search(q, 10).unwrap();
        let expected: &[u64] = match q {
            // 天气 is a real bigram of doc 5; 预报书 matches nothing.
            "天气预报书" => &[5],
            _ => &[],
        };
        assert_eq!(keys(&hits), expected, "query {q:?}");
    }
    // STANDARD keeps a CJK run as one word: only the exact run matches.
    let standard = index_with(Parser::Standard, CJK);
    assert!(standard.search("北京", 10).unwrap().is_empty());
    assert_eq!(keys(&standard.search("我爱北京天安门", 10).unwrap()), [4]);
}

#[test]
fn ngram_matches_parts_of_words() {
    let docs: &[(u64, &str)] = &[
        (1, "Tokenization pipeline"),
        (2, "detokenize step"),
        (3, "random words here"),
        (4, "分布式数据库系统"),
    ];
    let bigrams = index_with(Parser::parse("NGRAM").unwrap(), docs);
    assert_eq!(
        key_set(&bigrams.search("token", 10).unwrap()),
        HashSet::from([1, 2])
    );
    // Longer overlap with doc 1 ranks it first.
    assert_eq!(bigrams.search("kenizat", 10).unwrap()[0].0, 1);
    assert!(bigrams.search("xyzq", 10).unwrap().is_empty());
    assert_eq!(keys(&bigrams.search("数据", 10).unwrap()), [4]);

    let trigrams = index_with(Parser::parse("NGRAM(3)").unwrap(), docs);
    // "izat" → "iza", "zat": only in "tokenization".
    assert_eq!(keys(&trigrams.search("izat", 10).unwrap()), [1]);
    // "ab" is shorter than the gram size: kept whole, so it matches only a whole two-letter word.
    assert!(trigrams.search("ab", 10).unwrap().is_empty());
    // STANDARD needs the whole word.
    let standard = index_with(Parser::Standard, docs);
    assert!(standard.search("token", 10).unwrap().is_empty());
}

#[test]
fn hostile_query_text_never_errors() {
    let long = "(\"a:b\") ".repeat(2000);
    let queries = [
        "\"",
        "'",
        "title:foo",
        "(a OR b) AND NOT c",
        "+must -not",
        "foo*",
        "\"unclosed phrase",
        "a:b:c",
        "\\",
        "[1 TO 5]",
        "{}",
        "fox^2",
        "fox~1",
        "'; DROP TABLE t; --",
        "🦊🔥",
        "\0\u{1}\u{7f}",
        "",
        "   \t\n ",
        "%_%",
        "/regex.*/",
        long.as_str(),
    ];
    for parser in [
        Parser::Standard,
        Parser::Multilingual,
        Parser::Ngram { min: 1, max: 3 },
    ] {
        let index = index_with(
            parser,
            &[
                (1, "title foo: the fox and (the) dog"),
                (2, "must not DROP TABLE"),
                (3, "🦊 emoji"),
            ],
        );
        for q in queries {
            index
                .search(q, 10)
                .unwrap_or_else(|e| panic!("{parser} search {q:?}: {e}"));
            index
                .matching(q)
                .unwrap_or_else(|e| panic!("{parser} matching {q:?}: {e}"));
            index
                .score_keys(q, &[1, 2])
                .unwrap_or_else(|e| panic!("{parser} score_keys {q:?}: {e}"));
        }
        // Operators are plain words: `title:foo` is the words title and foo.
        assert_eq!(
            keys(&index.search("title:foo", 10).unwrap())[0],
            1,
            "{parser}"
        );
        assert_eq!(
            keys(&index.search("+must -not", 10).unwrap())[0],
            2,
            "{parser}"
        );
    }
}

#[test]
fn readers_only_ever_see_whole_commits() {
    let index = Arc::new(FullTextIndex::in_ram(Parser::Standard).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    const BATCHES: u64 = 30;
    const PER_BATCH: u64 = 10;
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let index = Arc::clone(&index);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut checks = 0u64;
                let mut last_len = 0;
                while !done.load(Ordering::SeqCst) {
                    for b in 0..BATCHES {
                        let n = index.matching(&format!("batch{b}")).unwrap().len() as u64;
                        assert!(n == 0 || n == PER_BATCH, "batch{b} partly visible: {n}");
                        checks += 1;
                    }
                    let len = index.len();
                    assert!(
                        len >= last_len && len.is_multiple_of(PER_BATCH),
                        "len {len} after {last_len}"
                    );
                    last_len = len;
                }
                checks
            })
        })
        .collect();
    for b in 0..BATCHES {
        for i in 0..PER_BATCH {
            index
                .upsert(b * PER_BATCH + i, Some(&format!("row {i} of batch{b}")))
                .unwrap();
        }
        index.commit(b + 1).unwrap();
        // Visible as soon as commit returns.
        assert_eq!(
            index.matching(&format!("batch{b}")).unwrap().len() as u64,
            PER_BATCH
        );
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(index.len(), BATCHES * PER_BATCH);
    assert_eq!(index.watermark(), BATCHES);
}

#[test]
fn compact_keeps_results_and_drops_deleted_rows() {
    let index = FullTextIndex::in_ram(Parser::Standard).unwrap();
    for round in 0..3u64 {
        for k in 0..20u64 {
            index
                .upsert(k, Some(&format!("common word{k} round{round}")))
                .unwrap();
        }
        index.commit(round + 1).unwrap();
    }
    let before = index.search("common word3", 5).unwrap();
    index.compact().unwrap();
    assert_eq!(index.len(), 20);
    let searcher = index.searcher();
    assert_eq!(searcher.segment_readers().len(), 1);
    assert!(!searcher.segment_readers()[0].has_deletes());
    assert_eq!(index.search("common word3", 5).unwrap()[0].0, before[0].0);
    assert!(index.search("round0 round1", 10).unwrap().is_empty());
    assert_eq!(index.watermark(), 3);
}
