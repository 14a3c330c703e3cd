//! The VEC_* functions through a real DataFusion `SessionContext` running SQL.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, FixedSizeListBuilder, Float32Builder, Float64Builder, Int64Array,
    LargeListBuilder, ListBuilder, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use embedb_vector::{register_all, vector_data_type};

fn context() -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    register_all(&ctx);
    ctx
}

async fn run(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
    ctx.sql(sql).await?.collect().await
}

/// All values of column `col`, over all batches.
async fn column(ctx: &SessionContext, sql: &str, col: usize) -> Vec<ScalarValue> {
    let batches = run(ctx, sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in &batches {
        for i in 0..b.num_rows() {
            out.push(ScalarValue::try_from_array(b.column(col), i).unwrap());
        }
    }
    out
}

async fn one(ctx: &SessionContext, sql: &str) -> ScalarValue {
    let v = column(ctx, sql, 0).await;
    assert_eq!(v.len(), 1, "{sql}");
    v.into_iter().next().unwrap()
}

async fn f64_of(ctx: &SessionContext, sql: &str) -> Option<f64> {
    match one(ctx, sql).await {
        ScalarValue::Float64(v) => v,
        other => panic!("{sql}: expected Float64, got {other:?}"),
    }
}

async fn i64_of(ctx: &SessionContext, sql: &str) -> Option<i64> {
    match one(ctx, sql).await {
        ScalarValue::Int64(v) => v,
        other => panic!("{sql}: expected Int64, got {other:?}"),
    }
}

async fn str_of(ctx: &SessionContext, sql: &str) -> Option<String> {
    match one(ctx, sql).await {
        ScalarValue::Utf8(v) => v,
        other => panic!("{sql}: expected Utf8, got {other:?}"),
    }
}

/// The message of the innermost error (what the SQL layer shows).
async fn error_of(ctx: &SessionContext, sql: &str) -> String {
    match run(ctx, sql).await {
        Ok(b) => panic!("{sql}: expected an error, got {b:?}"),
        Err(e) => match e.find_root() {
            DataFusionError::Execution(m) | DataFusionError::Plan(m) => m.clone(),
            other => other.to_string(),
        },
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[tokio::test]
async fn spec_examples() {
    let ctx = context();
    assert_eq!(
        f64_of(&ctx, "SELECT vec_l2_distance('[0,3]','[4,0]')").await,
        Some(5.0)
    );
    assert_eq!(
        f64_of(&ctx, "SELECT vec_cosine_distance('[1,1]','[-1,-1]')").await,
        Some(2.0)
    );
    assert_eq!(
        f64_of(&ctx, "SELECT vec_negative_inner_product('[1,2]','[3,4]')").await,
        Some(-11.0)
    );
    assert_eq!(
        f64_of(&ctx, "SELECT vec_l1_distance('[0,0]','[3,4]')").await,
        Some(7.0)
    );
    let c = f64_of(&ctx, "SELECT vec_cosine_distance('[1,2,3]','[4,5,6]')")
        .await
        .unwrap();
    assert!(close(c, 0.025368153802923787), "{c}");
    assert_eq!(f64_of(&ctx, "SELECT vec_l2_norm('[3,4]')").await, Some(5.0));
    assert_eq!(i64_of(&ctx, "SELECT vec_dims('[1,2,3]')").await, Some(3));
    assert_eq!(i64_of(&ctx, "SELECT vec_dims('[]')").await, Some(0));
    assert_eq!(
        str_of(&ctx, "SELECT vec_as_text('[1.000, 2.5]')")
            .await
            .as_deref(),
        Some("[1,2.5]")
    );
}

#[tokio::test]
async fn upper_case_names() {
    let ctx = context();
    assert_eq!(
        f64_of(&ctx, "SELECT VEC_L2_DISTANCE('[0,3]','[4,0]')").await,
        Some(5.0)
    );
    assert_eq!(i64_of(&ctx, "SELECT Vec_Dims('[1]')").await, Some(1));
}

#[tokio::test]
async fn text_round_trip() {
    let ctx = context();
    assert_eq!(
        str_of(
            &ctx,
            "SELECT vec_as_text(vec_from_text(' [ 1e-05 , -0, 1E20 ] '))"
        )
        .await
        .as_deref(),
        Some("[0.00001,-0,100000000000000000000]")
    );
    assert_eq!(
        str_of(&ctx, "SELECT vec_as_text('[]')").await.as_deref(),
        Some("[]")
    );
    let v = one(&ctx, "SELECT vec_from_text('[1,2.5]')").await;
    assert_eq!(v.data_type(), vector_data_type());
    let batches = run(&ctx, "SELECT vec_from_text('[1,2.5]') AS v")
        .await
        .unwrap();
    assert_eq!(
        batches[0].schema().field(0).data_type(),
        &vector_data_type()
    );
    assert_eq!(
        i64_of(&ctx, "SELECT vec_dims(vec_from_text('[1,2.5]'))").await,
        Some(2)
    );
}

#[tokio::test]
async fn nulls() {
    let ctx = context();
    assert_eq!(
        f64_of(&ctx, "SELECT vec_l2_distance(NULL, '[1]')").await,
        None
    );
    assert_eq!(
        f64_of(&ctx, "SELECT vec_l1_distance('[1]', NULL)").await,
        None
    );
    assert_eq!(
        f64_of(&ctx, "SELECT vec_cosine_distance(NULL, NULL)").await,
        None
    );
    assert_eq!(
        f64_of(&ctx, "SELECT vec_negative_inner_product(NULL, '[1]')").await,
        None
    );
    assert_eq!(f64_of(&ctx, "SELECT vec_l2_norm(NULL)").await, None);
    assert_eq!(i64_of(&ctx, "SELECT vec_dims(NULL)").await, None);
    assert_eq!(str_of(&ctx, "SELECT vec_as_text(NULL)").await, None);
    assert!(one(&ctx, "SELECT vec_from_text(NULL)").await.is_null());
    assert_eq!(
        f64_of(&ctx, "SELECT vec_l2_distance(CAST(NULL AS VARCHAR), '[1]')").await,
        None
    );
    // NULL wins over a dimension mismatch.
    assert_eq!(
        f64_of(&ctx, "SELECT vec_l2_distance(NULL, '[1,2,3]')").await,
        None
    );
}

#[tokio::test]
async fn zero_vector_cosine_is_null() {
    let ctx = context();
    assert_eq!(
        f64_of(&ctx, "SELECT vec_cosine_distance('[0,0]','[1,2]')").await,
        None
    );
    assert_eq!(
        f64_of(&ctx, "SELECT vec_cosine_distance('[]','[]')").await,
        None
    );
    assert_eq!(
        f64_of(&ctx, "SELECT vec_l2_distance('[]','[]')").await,
        Some(0.0)
    );
}

#[tokio::test]
async fn errors() {
    let ctx = context();
    assert_eq!(
        error_of(&ctx, "SELECT vec_l2_distance('[1,2]','[1,2,3]')").await,
        "vectors have different dimensions: 2 and 3"
    );
    assert_eq!(
        error_of(&ctx, "SELECT vec_cosine_distance('[1,2,3]','[1]')").await,
        "vectors have different dimensions: 3 and 1"
    );
    assert_eq!(
        error_of(&ctx, "SELECT vec_dims('[1,')").await,
        "Invalid vector text: [1,"
    );
    assert_eq!(
        error_of(&ctx, "SELECT vec_from_text('abc')").await,
        "Invalid vector text: abc"
    );
    assert_eq!(
        error_of(&ctx, "SELECT vec_from_text('[1e39]')").await,
        "value 1e+39 out of range for float32"
    );
    // Raised by the type check (DataFusion wraps it).
    let e = run(&ctx, "SELECT vec_dims(1)")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot cast from bigint to vector"), "{e}");
}

#[tokio::test]
async fn parameter_count() {
    let ctx = context();
    for (sql, name) in [
        ("SELECT vec_dims('[1]', '[2]')", "VEC_DIMS"),
        ("SELECT vec_dims()", "VEC_DIMS"),
        ("SELECT vec_l2_distance('[1]')", "VEC_L2_DISTANCE"),
        (
            "SELECT vec_cosine_distance('[1]', '[1]', '[1]')",
            "VEC_COSINE_DISTANCE",
        ),
        ("SELECT VEC_AS_TEXT()", "VEC_AS_TEXT"),
        ("SELECT vec_from_text('[1]', 2)", "VEC_FROM_TEXT"),
        ("SELECT vec_l2_norm()", "VEC_L2_NORM"),
    ] {
        let e = match run(&ctx, sql).await {
            Ok(_) => panic!("{sql} should fail"),
            Err(e) => e.to_string(),
        };
        let want = format!("Incorrect parameter count in the call to native function '{name}'");
        assert!(e.contains(&want), "{sql}: {e}");
    }
    // It is a planning-time error: creating the logical plan already fails.
    assert!(ctx.sql("SELECT vec_dims()").await.is_err());
}

fn list_f32(rows: &[Option<&[f32]>]) -> ArrayRef {
    let mut b = ListBuilder::new(Float32Builder::new());
    for r in rows {
        match r {
            Some(v) => {
                b.values().append_slice(v);
                b.append(true);
            }
            None => b.append_null(),
        }
    }
    Arc::new(b.finish())
}

/// Table `t(id, v, s)`: `v` a List<Float32> vector column, `s` the same vectors as text.
async fn items(ctx: &SessionContext) {
    let rows: Vec<(i64, Option<&[f32]>)> = vec![
        (1, Some(&[1.0, 0.0])),
        (2, Some(&[0.0, 1.0])),
        (3, Some(&[1.0, 1.0])),
        (4, None),
        (5, Some(&[-1.0, 0.0])),
        (6, Some(&[0.0, 0.0])),
        (7, Some(&[3.0, 4.0])),
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", vector_data_type(), true),
        Field::new("s", DataType::Utf8, true),
    ]));
    // Two partitions, so evaluation happens over several batches.
    let mut partitions = Vec::new();
    for chunk in rows.chunks(4) {
        let ids = Int64Array::from(chunk.iter().map(|r| r.0).collect::<Vec<_>>());
        let vs = list_f32(&chunk.iter().map(|r| r.1).collect::<Vec<_>>());
        let ss = StringArray::from(
            chunk
                .iter()
                .map(|r| r.1.map(embedb_vector::format_vector))
                .collect::<Vec<_>>(),
        );
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), vs, Arc::new(ss)]).unwrap();
        partitions.push(vec![batch]);
    }
    let table = MemTable::try_new(schema, partitions).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
}

fn ids(v: Vec<ScalarValue>) -> Vec<i64> {
    v.into_iter()
        .map(|s| match s {
            ScalarValue::Int64(Some(i)) => i,
            other => panic!("{other:?}"),
        })
        .collect()
}

fn f64s(v: Vec<ScalarValue>) -> Vec<Option<f64>> {
    v.into_iter()
        .map(|s| match s {
            ScalarValue::Float64(x) => x,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn column_against_constant() {
    let ctx = context();
    items(&ctx).await;
    let d = f64s(
        column(
            &ctx,
            "SELECT id, vec_l2_distance(v, '[0,0]') FROM t ORDER BY id",
            1,
        )
        .await,
    );
    assert_eq!(
        d,
        vec![
            Some(1.0),
            Some(1.0),
            Some(2f64.sqrt()),
            None,
            Some(1.0),
            Some(0.0),
            Some(5.0)
        ]
    );
    // Constant first.
    let d = f64s(
        column(
            &ctx,
            "SELECT id, vec_l1_distance('[0,0]', v) FROM t ORDER BY id",
            1,
        )
        .await,
    );
    assert_eq!(
        d,
        vec![
            Some(1.0),
            Some(1.0),
            Some(2.0),
            None,
            Some(1.0),
            Some(0.0),
            Some(7.0)
        ]
    );
    let d = f64s(
        column(
            &ctx,
            "SELECT id, vec_cosine_distance('[1,0]', v) FROM t ORDER BY id",
            1,
        )
        .await,
    );
    let want = [
        Some(0.0),
        Some(1.0),
        Some(1.0 - 0.5f64.sqrt()),
        None,
        Some(2.0),
        None,
        Some(0.4),
    ];
    assert_eq!(d.len(), want.len());
    for (got, want) in d.iter().zip(want) {
        match (got, want) {
            (Some(g), Some(w)) => assert!(close(*g, w), "{d:?}"),
            (None, None) => {}
            _ => panic!("{d:?}"),
        }
    }
    let d = f64s(
        column(
            &ctx,
            "SELECT id, vec_negative_inner_product(v, '[2,3]') FROM t ORDER BY id",
            1,
        )
        .await,
    );
    assert_eq!(
        d,
        vec![
            Some(-2.0),
            Some(-3.0),
            Some(-5.0),
            None,
            Some(2.0),
            Some(-0.0),
            Some(-18.0)
        ]
    );
    let n = f64s(column(&ctx, "SELECT id, vec_l2_norm(v) FROM t ORDER BY id", 1).await);
    assert_eq!(n[6], Some(5.0));
    assert_eq!(n[3], None);
    let dims = column(&ctx, "SELECT id, vec_dims(v) FROM t ORDER BY id", 1).await;
    assert_eq!(dims[0], ScalarValue::Int64(Some(2)));
    assert_eq!(dims[3], ScalarValue::Int64(None));
    let text = column(&ctx, "SELECT id, vec_as_text(v) FROM t ORDER BY id", 1).await;
    assert_eq!(text[6], ScalarValue::Utf8(Some("[3,4]".into())));
    assert_eq!(text[3], ScalarValue::Utf8(None));
}

#[tokio::test]
async fn order_by_distance_limit() {
    let ctx = context();
    items(&ctx).await;
    let got = ids(column(
        &ctx,
        "SELECT id FROM t ORDER BY vec_cosine_distance(v, '[1, 0.1]') LIMIT 2",
        0,
    )
    .await);
    assert_eq!(got, vec![1, 3]);
    let got = ids(column(
        &ctx,
        "SELECT id FROM t ORDER BY VEC_L2_DISTANCE(v, '[3,3]') LIMIT 2",
        0,
    )
    .await);
    assert_eq!(got, vec![7, 3]);
    let got = ids(column(
        &ctx,
        "SELECT id, vec_l2_distance(v, '[-1,0.2]') AS d FROM t WHERE id <> 6 ORDER BY d LIMIT 3",
        0,
    )
    .await);
    assert_eq!(got, vec![5, 2, 1]);
}

#[tokio::test]
async fn column_against_column() {
    let ctx = context();
    items(&ctx).await;
    // Text column parsed per row, vector column read in place.
    let d = f64s(
        column(
            &ctx,
            "SELECT id, vec_l2_distance(v, s) FROM t ORDER BY id",
            1,
        )
        .await,
    );
    assert_eq!(
        d,
        vec![
            Some(0.0),
            Some(0.0),
            Some(0.0),
            None,
            Some(0.0),
            Some(0.0),
            Some(0.0)
        ]
    );
    let d = f64s(
        column(
            &ctx,
            "SELECT a.id, vec_l1_distance(a.v, b.v) FROM t a JOIN t b ON b.id = a.id + 1 ORDER BY a.id",
            1,
        )
        .await,
    );
    assert_eq!(
        d,
        vec![Some(2.0), Some(1.0), None, None, Some(1.0), Some(7.0)]
    );
    let text = column(&ctx, "SELECT id, vec_as_text(s) FROM t ORDER BY id", 1).await;
    assert_eq!(text[1], ScalarValue::Utf8(Some("[0,1]".into())));
}

#[tokio::test]
async fn column_dimension_mismatch() {
    let ctx = context();
    items(&ctx).await;
    assert_eq!(
        error_of(&ctx, "SELECT vec_l2_distance(v, '[1,2,3]') FROM t").await,
        "vectors have different dimensions: 2 and 3"
    );
    assert_eq!(
        error_of(&ctx, "SELECT vec_cosine_distance('[1,2,3]', v) FROM t").await,
        "vectors have different dimensions: 3 and 2"
    );
}

#[tokio::test]
async fn other_list_layouts() {
    let ctx = context();
    // LargeList<Float64> and FixedSizeList<Float32>.
    let mut large = LargeListBuilder::new(Float64Builder::new());
    large.values().append_slice(&[3.0, 4.0]);
    large.append(true);
    large.append_null();
    large.values().append_slice(&[0.0, 1.0]);
    large.append(true);
    let mut fixed = FixedSizeListBuilder::new(Float32Builder::new(), 2);
    for (v, valid) in [([0.0, 0.0], true), ([1.0, 1.0], true), ([0.0, 0.0], false)] {
        fixed.values().append_slice(&v);
        fixed.append(valid);
    }
    let large: ArrayRef = Arc::new(large.finish());
    let fixed: ArrayRef = Arc::new(fixed.finish());
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("a", large.data_type().clone(), true),
        Field::new("b", fixed.data_type().clone(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![1, 2, 3])), large, fixed],
    )
    .unwrap();
    ctx.register_table(
        "u",
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
    )
    .unwrap();
    let d = f64s(
        column(
            &ctx,
            "SELECT id, vec_l2_distance(a, b) FROM u ORDER BY id",
            1,
        )
        .await,
    );
    assert_eq!(d, vec![Some(5.0), None, None]);
    let t = column(
        &ctx,
        "SELECT id, vec_as_text(a), vec_as_text(b) FROM u ORDER BY id",
        1,
    )
    .await;
    assert_eq!(t[0], ScalarValue::Utf8(Some("[3,4]".into())));
    let t = column(&ctx, "SELECT id, vec_as_text(b) FROM u ORDER BY id", 1).await;
    assert_eq!(t[1], ScalarValue::Utf8(Some("[1,1]".into())));
    let d = f64s(column(&ctx, "SELECT id, vec_l2_norm(a) FROM u ORDER BY id", 1).await);
    assert_eq!(d, vec![Some(5.0), None, Some(1.0)]);
}

#[tokio::test]
async fn add_and_sub() {
    let ctx = context();
    assert_eq!(
        str_of(&ctx, "SELECT vec_as_text(vec_add('[1,2]', '[3,4.5]'))")
            .await
            .as_deref(),
        Some("[4,6.5]")
    );
    assert_eq!(
        str_of(&ctx, "SELECT vec_as_text(vec_sub('[1,2]', '[3,4.5]'))")
            .await
            .as_deref(),
        Some("[-2,-2.5]")
    );
    assert!(one(&ctx, "SELECT vec_add(NULL, '[1]')").await.is_null());
    assert_eq!(
        error_of(&ctx, "SELECT vec_add('[1]', '[1,2]')").await,
        "vectors have different dimensions: 1 and 2"
    );
    assert_eq!(
        error_of(&ctx, "SELECT vec_add('[3e38]', '[3e38]')").await,
        "value out of range: overflow"
    );
    assert_eq!(
        error_of(&ctx, "SELECT vec_sub('[-3e38]', '[3e38]')").await,
        "value out of range: overflow"
    );
}
