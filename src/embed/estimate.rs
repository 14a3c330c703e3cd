//! `EMBEDDING_ESTIMATE(model, text [, options])`: what embedding a set of texts would cost, before
//! running the statement that would embed them.
//!
//! An aggregate: `SELECT EMBEDDING_ESTIMATE('jina_ai/jina-embeddings-v3', body) FROM raw WHERE …`
//! over the rows an `INSERT … SELECT` or a backfill would embed. It collects the distinct texts,
//! then asks the `Embedder` which of them its cache (memory, then store) already answers, and
//! counts the tokens of the rest — exactly with a local model's tokenizer (up to its input
//! limit), estimated at four characters per token for a remote provider. The answer is JSON:
//! `{"texts": 1000, "distinct": 800, "cached": 300, "to_embed": 500, "tokens": 61234,
//! "tokens_counted": false}`. Nothing is sent to a provider.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};

use super::udf::strings;
use super::{options_for_storage, parse_options, Embedder};
use crate::error::to_df;

pub struct EmbeddingEstimate {
    embedder: Arc<Embedder>,
    signature: Signature,
}

udf_identity!(EmbeddingEstimate, embedder, "embedding_estimate");

pub fn embedding_estimate_udaf(embedder: Arc<Embedder>) -> AggregateUDF {
    AggregateUDF::from(EmbeddingEstimate { embedder, signature: Signature::variadic_any(Volatility::Volatile) })
}

impl AggregateUDFImpl for EmbeddingEstimate {
    fn name(&self) -> &str {
        "embedding_estimate"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(2..=3).contains(&args.len()) {
            return datafusion::common::plan_err!("Incorrect parameter count in the call to native function 'embedding_estimate'");
        }
        Ok(DataType::Utf8)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new_list_field(DataType::Utf8, true));
        Ok(vec![
            Arc::new(Field::new(format!("{}[texts]", args.name), DataType::List(item), true)),
            Arc::new(Field::new(format!("{}[count]", args.name), DataType::Int64, true)),
            Arc::new(Field::new(format!("{}[model]", args.name), DataType::Utf8, true)),
            Arc::new(Field::new(format!("{}[options]", args.name), DataType::Utf8, true)),
        ])
    }
    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Estimating { embedder: Some(self.embedder.clone()), ..Default::default() }))
    }
}

#[derive(Default)]
struct Estimating {
    embedder: Option<Arc<Embedder>>,
    texts: HashSet<String>,
    /// Non-NULL texts seen (duplicates included).
    count: i64,
    model: Option<String>,
    options: Option<String>,
}

impl std::fmt::Debug for Estimating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Estimating({} texts)", self.texts.len())
    }
}

impl Accumulator for Estimating {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (models, texts) = (strings(&values[0])?, strings(&values[1])?);
        let options = values.get(2).map(strings).transpose()?;
        for i in 0..texts.len() {
            if self.model.is_none() && !models.is_null(i) {
                self.model = Some(models.value(i).to_string());
            }
            if let Some(o) = &options {
                if self.options.is_none() && !o.is_null(i) {
                    self.options = Some(o.value(i).to_string());
                }
            }
            if !texts.is_null(i) {
                self.count += 1;
                if !self.texts.contains(texts.value(i)) {
                    self.texts.insert(texts.value(i).to_string());
                }
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let texts: Vec<ScalarValue> = self.texts.iter().map(|t| ScalarValue::Utf8(Some(t.clone()))).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&texts, &DataType::Utf8)),
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Utf8(self.model.clone()),
            ScalarValue::Utf8(self.options.clone()),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        let counts = states[1].as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        let (models, options) = (strings(&states[2])?, strings(&states[3])?);
        for i in 0..lists.len() {
            if !lists.is_null(i) {
                let texts = strings(&lists.value(i))?;
                for j in 0..texts.len() {
                    if !texts.is_null(j) && !self.texts.contains(texts.value(j)) {
                        self.texts.insert(texts.value(j).to_string());
                    }
                }
            }
            if !counts.is_null(i) {
                self.count += counts.value(i);
            }
            if self.model.is_none() && !models.is_null(i) {
                self.model = Some(models.value(i).to_string());
            }
            if self.options.is_none() && !options.is_null(i) {
                self.options = Some(options.value(i).to_string());
            }
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let Some(model) = &self.model else { return Ok(ScalarValue::Utf8(None)) };
        let embedder = self.embedder.as_ref().expect("made with an embedder");
        let options = options_for_storage(&parse_options(self.options.as_deref()).map_err(to_df)?);
        let texts: Vec<&str> = self.texts.iter().map(String::as_str).collect();
        let e = embedder.estimate(model, &texts, &options).map_err(to_df)?;
        let json = serde_json::json!({
            "texts": self.count,
            "distinct": texts.len(),
            "cached": e.cached,
            "to_embed": texts.len() as u64 - e.cached,
            "tokens": e.tokens,
            "tokens_counted": e.tokens_counted,
        });
        Ok(ScalarValue::Utf8(Some(json.to_string())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.texts.iter().map(|t| t.len() + 24).sum::<usize>()
    }
}
