//! `EMBED_TEXT(model, text [, options])` as a DataFusion scalar UDF. It receives a whole column of
//! texts per call, so a multi-row INSERT embeds its rows in one provider request (per batch).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ListBuilder, Float32Builder, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

use super::{options_for_storage, own_options, parse_options, Embedder, Notes};
use crate::error::to_df;
use crate::interrupt::{blocking, Interrupt};

pub struct EmbedText {
    embedder: Arc<Embedder>,
    /// The connection's KILL signal: stops a provider call in flight.
    interrupt: Arc<Interrupt>,
    /// The connection's notes (texts truncated), for the statement's warning.
    notes: Arc<Notes>,
    signature: Signature,
}

udf_identity!(EmbedText, embedder, "embed_text");

pub fn embed_text_udf(embedder: Arc<Embedder>, interrupt: Arc<Interrupt>, notes: Arc<Notes>) -> ScalarUDF {
    // Volatile: never constant-folded (TiDB's rule); the query side embeds once per statement itself.
    ScalarUDF::from(EmbedText { embedder, interrupt, notes, signature: Signature::variadic_any(Volatility::Volatile) })
}

/// An argument's values as text (cast as `CAST(x AS CHAR)` would).
pub(super) fn strings(a: &ArrayRef) -> Result<StringArray> {
    Ok(cast(a, &DataType::Utf8)?.as_any().downcast_ref::<StringArray>().expect("cast to Utf8 gives a StringArray").clone())
}

fn scalar_str(c: &ColumnarValue) -> Result<Option<String>> {
    match c {
        ColumnarValue::Scalar(s) => Ok(match s {
            ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => v.clone(),
            ScalarValue::Null => None,
            other => Some(other.to_string()),
        }),
        ColumnarValue::Array(a) => {
            // A constant that arrived as an array: every row must hold the same value.
            let s = cast(a, &DataType::Utf8)?;
            let s = s.as_any().downcast_ref::<StringArray>().unwrap();
            Ok(if s.is_empty() || s.is_null(0) { None } else { Some(s.value(0).to_string()) })
        }
    }
}

impl ScalarUDFImpl for EmbedText {
    fn name(&self) -> &str {
        "embed_text"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() < 2 || args.len() > 3 {
            return exec_err!("Incorrect parameter count in the call to native function 'embed_text'");
        }
        Ok(embedb_vector::vector_data_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let model = scalar_str(&args.args[0])?;
        let options = match args.args.get(2) {
            Some(o) => scalar_str(o)?,
            None => None,
        };
        let texts = strings(&args.args[1].to_array(n)?)?;
        let mut b = ListBuilder::new(Float32Builder::new());
        let Some(model) = model else {
            for _ in 0..n {
                b.append(false);
            }
            return Ok(ColumnarValue::Array(Arc::new(b.finish())));
        };
        let all = parse_options(options.as_deref()).map_err(to_df)?;
        let long_text = own_options(&all).map_err(to_df)?.long_text;
        let opts = options_for_storage(&all);
        let items: Vec<Option<&str>> = (0..n).map(|i| if texts.is_null(i) { None } else { Some(texts.value(i)) }).collect();
        let embedder = self.embedder.clone();
        // Model inference and HTTP calls block: tell tokio so other connections keep running.
        let vectors = blocking(|| embedder.embed_long(&model, &items, &opts, &self.interrupt, long_text, Some(&self.notes))).map_err(to_df)?;
        for v in vectors {
            match v {
                Some(v) => {
                    b.values().append_slice(&v);
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(b.finish())))
    }
}

/// `RERANK_SCORE(model, query, text)`: the reranker's relevance of each row's text to the query
/// (`embed::rerank`); one provider call per batch of rows and distinct query.
pub struct RerankScore {
    embedder: Arc<Embedder>,
    interrupt: Arc<Interrupt>,
    signature: Signature,
}

udf_identity!(RerankScore, embedder, "rerank_score");

pub fn rerank_score_udf(embedder: Arc<Embedder>, interrupt: Arc<Interrupt>) -> ScalarUDF {
    ScalarUDF::from(RerankScore { embedder, interrupt, signature: Signature::variadic_any(Volatility::Volatile) })
}

impl ScalarUDFImpl for RerankScore {
    fn name(&self) -> &str {
        "rerank_score"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() != 3 {
            return exec_err!("Incorrect parameter count in the call to native function 'rerank_score'");
        }
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let text = |c: &ColumnarValue| strings(&c.to_array(n)?);
        let (models, queries, texts) = (text(&args.args[0])?, text(&args.args[1])?, text(&args.args[2])?);
        let mut out: Vec<Option<f64>> = vec![None; n];
        // Rows grouped by (model, query): one rerank call each.
        let mut groups: std::collections::BTreeMap<(String, String), Vec<usize>> = Default::default();
        for i in 0..n {
            if models.is_null(i) || queries.is_null(i) || texts.is_null(i) {
                continue;
            }
            groups.entry((models.value(i).to_string(), queries.value(i).to_string())).or_default().push(i);
        }
        for ((model, query), rows) in groups {
            let items: Vec<Option<&str>> = rows.iter().map(|&i| Some(texts.value(i))).collect();
            let scores = blocking(|| self.embedder.rerank(&model, &query, &items, &self.interrupt)).map_err(to_df)?;
            for (&i, s) in rows.iter().zip(scores) {
                out[i] = s;
            }
        }
        Ok(ColumnarValue::Array(Arc::new(datafusion::arrow::array::Float64Array::from(out))))
    }
}

/// `embed_best_chunk(text, chunks, query, model, options)`: the text of the chunk of `text` whose
/// vector (in `chunks`, a chunked column's value) is nearest `query` by cosine distance. Written
/// by `sql::query` for `VEC_EMBED_BEST_CHUNK(col, 'query')`, which supplies the column's source
/// text, model and options. The cut is found again from the text (`Embedder::chunk_ranges` is
/// deterministic); a value whose chunk count does not match its text gives NULL.
pub struct BestChunk {
    embedder: Arc<Embedder>,
    signature: Signature,
}

udf_identity!(BestChunk, embedder, "embed_best_chunk");

pub fn best_chunk_udf(embedder: Arc<Embedder>) -> ScalarUDF {
    ScalarUDF::from(BestChunk { embedder, signature: Signature::variadic_any(Volatility::Immutable) })
}

/// Row `i` of a vector argument (a list column, or a text-form vector).
fn vector_at(a: &ArrayRef, i: usize) -> Result<Option<Vec<f32>>> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Float32Type;
    if a.is_null(i) {
        return Ok(None);
    }
    match a.data_type() {
        DataType::List(_) => {
            let v = a.as_list::<i32>().value(i);
            let v = cast(&v, &DataType::Float32)?;
            Ok(Some(v.as_primitive::<Float32Type>().values().to_vec()))
        }
        _ => {
            let s = strings(a)?;
            embedb_vector::parse_vector(s.value(i)).map(Some).map_err(|e| datafusion::error::DataFusionError::Execution(e.to_string()))
        }
    }
}

impl ScalarUDFImpl for BestChunk {
    fn name(&self) -> &str {
        "embed_best_chunk"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() != 5 {
            return exec_err!("Incorrect parameter count in the call to native function 'embed_best_chunk'");
        }
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(n)).collect::<Result<_>>()?;
        let texts = strings(&arrays[0])?;
        let (models, options) = (strings(&arrays[3])?, strings(&arrays[4])?);
        let mut out = datafusion::arrow::array::StringBuilder::new();
        for i in 0..n {
            let (Some(chunks), Some(query)) = (vector_at(&arrays[1], i)?, vector_at(&arrays[2], i)?) else {
                out.append_null();
                continue;
            };
            if texts.is_null(i) || models.is_null(i) || query.is_empty() || chunks.len() % query.len() != 0 {
                out.append_null();
                continue;
            }
            let all = parse_options(Some(options.value(i))).map_err(to_df)?;
            let size = match own_options(&all).map_err(to_df)?.long_text {
                super::LongText::Chunk(size) => size,
                _ => super::chunk::ChunkSize { tokens: None, overlap: None },
            };
            let text = texts.value(i);
            let ranges = self.embedder.chunk_ranges(models.value(i), text, size).map_err(to_df)?;
            if ranges.len() != chunks.len() / query.len() {
                out.append_null();
                continue;
            }
            let best = chunks
                .chunks_exact(query.len())
                .map(|c| embedb_vector::cosine_distance(c, &query).unwrap_or(f64::NAN))
                .enumerate()
                .filter(|(_, d)| !d.is_nan())
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(k, _)| ranges[k]);
            match best {
                Some((s, e)) => out.append_value(&text[s..e]),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
