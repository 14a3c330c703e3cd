//! The SQL dialect embedb parses with: sqlparser's MySQL dialect (every method forwarded, and
//! `dialect()` answering as MySQL so the parser's MySQL-specific rules apply), plus one shortcut.
//!
//! sqlparser reads every expression's first token by first trying to parse a data type there
//! (for typed literals such as `DATE '2024-01-01'`); for a plain number or string that attempt
//! fails and builds an error message that is thrown away. A 1000-row INSERT has thousands of such
//! literals, and even a point select has one. A number or string followed by `,` or `)` can only
//! be that literal, so [`TidbDialect::parse_prefix`] returns it at once; anything else goes the
//! usual way.

use std::any::TypeId;

use datafusion::sql::sqlparser::ast::{Expr, Statement};
use datafusion::sql::sqlparser::dialect::{Dialect, MySqlDialect};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;

#[derive(Debug, Default)]
pub struct TidbDialect(MySqlDialect);

macro_rules! forward {
    ($($name:ident($($arg:ident: $t:ty),*) -> $r:ty;)*) => {
        $(fn $name(&self, $($arg: $t),*) -> $r { self.0.$name($($arg),*) })*
    };
}

impl Dialect for TidbDialect {
    fn dialect(&self) -> TypeId {
        self.0.dialect()
    }

    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let [first, next] = parser.peek_tokens_ref();
        let literal = matches!(first.token, Token::Number(..) | Token::SingleQuotedString(_));
        if literal && matches!(next.token, Token::Comma | Token::RParen) {
            return Some(parser.parse_value().map(Expr::Value));
        }
        let interval_call = matches!(&first.token, Token::Word(w) if w.keyword == Keyword::INTERVAL) && matches!(next.token, Token::LParen);
        if interval_call {
            return interval_function(parser).transpose();
        }
        if matches!(&first.token, Token::Word(w) if w.keyword == Keyword::INTERVAL) {
            if let Some(i) = compound_interval(parser).transpose() {
                return Some(i);
            }
        }
        None
    }

    fn parse_infix(&self, parser: &mut Parser, expr: &Expr, precedence: u8) -> Option<Result<Expr, ParserError>> {
        self.0.parse_infix(parser, expr, precedence)
    }

    fn parse_statement(&self, parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        self.0.parse_statement(parser)
    }

    fn is_table_factor_alias(&self, explicit: bool, kw: &Keyword, parser: &mut Parser) -> bool {
        self.0.is_table_factor_alias(explicit, kw, parser)
    }

    forward! {
        is_identifier_start(ch: char) -> bool;
        is_identifier_part(ch: char) -> bool;
        is_delimited_identifier_start(ch: char) -> bool;
        identifier_quote_style(identifier: &str) -> Option<char>;
        supports_string_literal_backslash_escape() -> bool;
        supports_string_literal_concatenation() -> bool;
        ignores_wildcard_escapes() -> bool;
        supports_numeric_prefix() -> bool;
        supports_bitwise_shift_operators() -> bool;
        supports_multiline_comment_hints() -> bool;
        require_interval_qualifier() -> bool;
        supports_limit_comma() -> bool;
        supports_create_table_select() -> bool;
        supports_insert_set() -> bool;
        supports_user_host_grantee() -> bool;
        supports_table_hints() -> bool;
        requires_single_line_comment_whitespace() -> bool;
        supports_match_against() -> bool;
        supports_select_modifiers() -> bool;
        supports_set_names() -> bool;
        supports_comma_separated_set_assignments() -> bool;
        supports_update_order_by() -> bool;
        supports_data_type_signed_suffix() -> bool;
        supports_cross_join_constraint() -> bool;
        supports_double_ampersand_operator() -> bool;
        supports_binary_kw_as_cast() -> bool;
        supports_comment_optimizer_hint() -> bool;
        supports_constraint_keyword_without_name() -> bool;
        supports_key_column_option() -> bool;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str, d: &dyn Dialect) -> Vec<Statement> {
        Parser::parse_sql(d, sql).unwrap()
    }

    #[test]
    fn parses_as_mysql_does() {
        for sql in [
            "INSERT INTO t VALUES (1, 'a', -2, 3.5, 'x' 'y', DATE '2024-01-01', NULL), (2, 'b''c', 0x1F, 1e3, TRUE, 'z', 7 DIV 2)",
            "SELECT a FROM t WHERE id = 5 AND s IN ('a', 'b') AND f('q', 1) LIMIT 2, 3",
            "SELECT `T`.`x` FROM (SELECT 1 AS x) AS `T` WHERE 'a' COLLATE utf8mb4_bin = 'A'",
            "UPDATE t SET a = 'v' WHERE id IN (1, 2) ORDER BY id LIMIT 1",
        ] {
            assert_eq!(parse(sql, &TidbDialect::default()), parse(sql, &MySqlDialect {}), "{sql}");
        }
    }
}

/// MySQL's `INTERVAL(N, N1, N2, …)` function — two or more arguments in parentheses — which
/// sqlparser would read as the start of an interval literal (`INTERVAL (1 + 2) DAY`, one
/// argument, still is one). It becomes a call of the `interval` function.
fn interval_function(parser: &mut Parser) -> Result<Option<Expr>, ParserError> {
    use datafusion::sql::sqlparser::ast::{Ident, ObjectName};
    let mut span = None;
    let args = parser.maybe_parse(|p| {
        span = Some(p.next_token().span);
        p.expect_token(&Token::LParen)?;
        let args = p.parse_comma_separated(Parser::parse_expr)?;
        p.expect_token(&Token::RParen)?;
        if args.len() < 2 {
            return Err(ParserError::ParserError("an interval literal, not INTERVAL()".into()));
        }
        Ok(args)
    })?;
    Ok(args.map(|args| {
        let mut call = crate::sql::rewrite::call("interval", args);
        if let Expr::Function(f) = &mut call {
            // The keyword's place, so that the result column is named as the call was written.
            f.name = ObjectName::from(vec![Ident::with_span(span.unwrap_or(datafusion::sql::sqlparser::tokenizer::Span::empty()), "interval")]);
        }
        call
    }))
}

/// MySQL's compound interval units (`INTERVAL '1 2' DAY_HOUR`, `'1-2' YEAR_MONTH`), which
/// sqlparser does not know; the unit travels as a custom field for the date arithmetic rewrite.
fn compound_interval(parser: &mut Parser) -> Result<Option<Expr>, ParserError> {
    use datafusion::sql::sqlparser::ast::{DateTimeField, Ident, Interval};
    const UNITS: [&str; 11] = [
        "SECOND_MICROSECOND", "MINUTE_MICROSECOND", "MINUTE_SECOND", "HOUR_MICROSECOND", "HOUR_SECOND", "HOUR_MINUTE",
        "DAY_MICROSECOND", "DAY_SECOND", "DAY_MINUTE", "DAY_HOUR", "YEAR_MONTH",
    ];
    parser.maybe_parse(|p| {
        p.expect_keyword(Keyword::INTERVAL)?;
        let value = p.parse_expr()?;
        let unit = match p.next_token().token {
            Token::Word(w) if UNITS.contains(&w.value.to_ascii_uppercase().as_str()) => w.value.to_ascii_uppercase(),
            _ => return Err(ParserError::ParserError("not a compound interval unit".into())),
        };
        Ok(Expr::Interval(Interval {
            value: Box::new(value),
            leading_field: Some(DateTimeField::Custom(Ident::new(unit))),
            leading_precision: None,
            last_field: None,
            fractional_seconds_precision: None,
        }))
    })
}
