//! Chunking: how a text longer than its model's window is cut into pieces that each fit, for an
//! `EMBED_TEXT` column with `"embedb.long_text": "chunk"`.
//!
//! A text travels through here as follows:
//! 1. The provider says where its tokens lie (`Provider::spans`: the local model's word pieces,
//!    byte ranges of the text) and how many fit one input. A remote provider that cannot count
//!    gets estimated tokens instead ([`estimated_spans`]: one per four bytes of each word, the
//!    estimate its rate limits use).
//! 2. [`split`] packs tokens into chunks of at most `tokens` of them, ending each chunk at the last
//!    sentence end in its second half where there is one (else at the window's edge), and starts
//!    the next chunk up to `overlap` tokens earlier — at a sentence start inside that overlap when
//!    there is one — so that no sentence is only ever seen cut in two.
//! 3. The caller (`Embedder::embed_long`) embeds every chunk (each cached on its own) and stores
//!    the row's chunk vectors one after another in the column: a chunked `VECTOR(D)` column holds
//!    `D × chunks` floats, and distances on it are the best chunk's (`VEC_CHUNKS_*`).
//!
//! The cut depends only on the text, the model's tokenizer and the two numbers, so the best
//! chunk's text can be found again later from the text alone ([`chunk_texts`]).

/// Sizes of chunks, in the model's tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSize {
    /// Tokens per chunk at most (None: the model's window).
    pub tokens: Option<usize>,
    /// Tokens a chunk repeats from the end of the one before (None: [`DEFAULT_OVERLAP`], at most
    /// a quarter of the chunk).
    pub overlap: Option<usize>,
}

/// Tokens a chunk repeats from the one before unless the column says otherwise.
pub const DEFAULT_OVERLAP: usize = 32;

/// Chunk size for providers that cannot say their window (remote APIs take far longer inputs,
/// but a chunk this size still finds a passage, as a local model's does).
pub const DEFAULT_REMOTE_TOKENS: usize = 512;

impl ChunkSize {
    /// The tokens per chunk and the overlap for a model whose window holds `window` tokens.
    pub fn resolve(self, window: usize) -> (usize, usize) {
        let tokens = self.tokens.unwrap_or(window).min(window).max(1);
        let overlap = self.overlap.unwrap_or(DEFAULT_OVERLAP.min(tokens / 4)).min(tokens / 2);
        (tokens, overlap)
    }
}

/// One token: its byte range in the text and its weight (1 for a real token).
pub type Span = (usize, usize, usize);

/// Words as estimated tokens (one per four bytes, at least one per word), for providers that
/// cannot tokenise here.
pub fn estimated_spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, i, (i - s).div_ceil(4).max(1)));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// Whether a sentence ends after token `i`: the token ends in `.`, `!` or `?` and space follows
/// it, or the gap after it holds a line break (paragraphs, list items).
fn sentence_end(text: &str, spans: &[Span], i: usize) -> bool {
    let (s, e, _) = spans[i];
    let next = spans.get(i + 1).map_or(text.len(), |n| n.0);
    let gap = &text[e.min(next)..next];
    if gap.contains('\n') {
        return true;
    }
    let ends = text[s..e].ends_with(['.', '!', '?']);
    ends && (next == text.len() || gap.starts_with(char::is_whitespace))
}

/// Byte ranges of the chunks of `text`, whose tokens are `spans` (in order), at most `tokens`
/// tokens each with `overlap` tokens repeated (see the module doc). A text without tokens is one
/// chunk, itself.
pub fn split(text: &str, spans: &[Span], tokens: usize, overlap: usize) -> Vec<(usize, usize)> {
    let n = spans.len();
    if n == 0 {
        return vec![(0, text.len())];
    }
    let tokens = tokens.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        // The window: as many tokens as fit (at least one, however heavy).
        let (mut j, mut w) = (start, 0);
        while j < n && w + spans[j].2 <= tokens {
            w += spans[j].2;
            j += 1;
        }
        j = j.max(start + 1);
        // Its end: the last sentence end in the window's second half, else the window's edge.
        let end = if j == n {
            n
        } else {
            let half = start + (j - start).div_ceil(2);
            (half..j).rev().find(|&e| sentence_end(text, spans, e)).map_or(j, |e| e + 1)
        };
        out.push((spans[start].0, spans[end - 1].1));
        if end == n {
            return out;
        }
        // The next start: back from the end by up to `overlap` tokens, then forward to the first
        // sentence start in that stretch, if any.
        let (mut s, mut w) = (end, 0);
        while s > start + 1 && w + spans[s - 1].2 <= overlap {
            w += spans[s - 1].2;
            s -= 1;
        }
        if let Some(b) = (s..end).find(|&b| sentence_end(text, spans, b - 1)) {
            s = b;
        }
        start = s.max(start + 1);
    }
}

/// The chunk texts of `text` for the given cut.
pub fn chunk_texts<'a>(text: &'a str, ranges: &[(usize, usize)]) -> Vec<&'a str> {
    ranges.iter().map(|&(s, e)| &text[s..e]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Span> {
        estimated_spans(text).into_iter().map(|(s, e, _)| (s, e, 1)).collect()
    }

    #[test]
    fn short_texts_are_one_chunk() {
        let t = "One sentence. Two sentences.";
        assert_eq!(split(t, &words(t), 10, 2), vec![(0, t.len())]);
        assert_eq!(split("", &[], 10, 2), vec![(0, 0)]);
        assert_eq!(split("   ", &words("   "), 10, 2), vec![(0, 3)]);
    }

    #[test]
    fn chunks_end_at_sentences_and_overlap_from_a_sentence_start() {
        let t = "a b c d. e f g h. i j k l. m n o p.";
        let w = words(t);
        let r = split(t, &w, 10, 4);
        let texts = chunk_texts(t, &r);
        // Each chunk holds at most 10 words and ends at a sentence end; the next starts at the
        // sentence start within the last 4 words.
        assert_eq!(texts, vec!["a b c d. e f g h.", "e f g h. i j k l.", "i j k l. m n o p."]);
    }

    #[test]
    fn a_sentence_longer_than_a_chunk_is_cut_by_tokens_with_overlap() {
        let t = "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10";
        let r = split(t, &words(t), 4, 1);
        assert_eq!(chunk_texts(t, &r), vec!["w1 w2 w3 w4", "w4 w5 w6 w7", "w7 w8 w9 w10"]);
        // Every word is in some chunk, and each chunk advances.
        let r = split(t, &words(t), 1, 5);
        assert_eq!(r.len(), 10);
    }

    #[test]
    fn every_token_is_covered_in_order() {
        let t = "Alpha beta. Gamma delta epsilon! Zeta eta theta iota kappa? Lambda mu\nnu xi omicron pi rho sigma tau.";
        let w = words(t);
        for tokens in 1..12 {
            for overlap in 0..tokens {
                let r = split(t, &w, tokens, overlap);
                assert_eq!(r[0].0, 0);
                assert_eq!(r.last().unwrap().1, t.len());
                for pair in r.windows(2) {
                    assert!(pair[1].0 > pair[0].0, "{tokens}/{overlap}: {r:?}");
                }
                for &(s, e, _) in &w {
                    assert!(r.iter().any(|&(a, b)| a <= s && e <= b), "{tokens}/{overlap}: word at {s} in no chunk");
                }
                for &(s, e) in &r {
                    let n = w.iter().filter(|x| x.0 >= s && x.1 <= e).count();
                    assert!(n <= tokens.max(1), "{tokens}/{overlap}: {}", &t[s..e]);
                }
            }
        }
    }

    #[test]
    fn estimated_tokens_weigh_long_words_more() {
        let t = "a abcdefghi  xy";
        assert_eq!(estimated_spans(t), vec![(0, 1, 1), (2, 11, 3), (13, 15, 1)]);
        assert_eq!(ChunkSize { tokens: None, overlap: None }.resolve(254), (254, 32));
        assert_eq!(ChunkSize { tokens: Some(1000), overlap: Some(900) }.resolve(254), (254, 127));
        assert_eq!(ChunkSize { tokens: Some(8), overlap: None }.resolve(254), (8, 2));
    }
}
