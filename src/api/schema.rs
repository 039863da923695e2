//! Request values whose rules the OpenAPI document states while the handlers enforce them:
//! [`Text`] with a [`TextRule`] (a name, an image path, a tag, a position, an ETag, each with
//! its rule as a `pattern`) and [`Count`] (a page size or limit, with its bounds). The schema
//! tells clients and API fuzzers the rule, but parsing accepts anything of the right JSON or
//! parameter type: the handler checks the value and refuses it with a code, the field and a
//! message naming the rule, where a schema validator would answer with a generic one.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::ops::Deref;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{
    ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type,
};
use serde_json::Value;

use crate::domain::name::MAX_NAME_LEN;
use crate::domain::oci::MAX_REPOSITORY_LEN;
use crate::domain::text::{MAX_DESCRIPTION_LEN, MAX_LABEL_LEN};

/// A rule for text that the spec states as a `pattern` (and a length limit).
pub trait TextRule {
    /// The regular expression a valid value matches, anchored, if there is one.
    const PATTERN: Option<&'static str> = None;
    /// The most characters a valid value has.
    const MAX_LENGTH: Option<usize> = None;
}

/// Text whose rule `R` the spec states; not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<R>(pub String, PhantomData<R>);

impl<R> Deref for Text<R> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<R> AsRef<str> for Text<R> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<R> From<&str> for Text<R> {
    fn from(value: &str) -> Self {
        Self(value.to_owned(), PhantomData)
    }
}

impl<R: TextRule + Send + Sync> Type for Text<R> {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            max_length: R::MAX_LENGTH,
            pattern: R::PATTERN.map(str::to_owned),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<R: TextRule + Send + Sync> ParseFromJSON for Text<R> {
    /// Only a JSON string: a number or boolean is not turned into text, as the spec says.
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => Ok(Self(text, PhantomData)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<R: TextRule + Send + Sync> ParseFromParameter for Text<R> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(value.into())
    }
}

impl<R: TextRule + Send + Sync> ToJSON for Text<R> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// Declares text rules: for each, a rule type with its pattern and length limit, and the
/// alias of [`Text`] under that rule that the handlers take.
macro_rules! text_rules {
    ($(
        $(#[$doc:meta])*
        $alias:ident: $rule:ident { $(pattern: $pattern:expr,)? $(max_length: $max:expr,)? }
    )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $rule;

        impl TextRule for $rule {
            $(const PATTERN: Option<&'static str> = Some($pattern);)?
            $(const MAX_LENGTH: Option<usize> = Some($max);)?
        }

        $(#[$doc])*
        pub type $alias = Text<$rule>;
    )*};
}

text_rules! {
    /// A registry name or upstream-proxy key, by the rule of
    /// [`ResourceName`](crate::domain::ResourceName): a lowercase letter, then lowercase letters
    /// and digits in runs joined by single separators (`.`, `_`, `__` or a run of `-`).
    Name: NameRule {
        pattern: "^[a-z][a-z0-9]*(?:(?:[._]|__|-+)[a-z0-9]+)*$",
        max_length: MAX_NAME_LEN,
    }
    /// An image path within a registry: OCI path components joined by `/`.
    Image: ImageRule {
        pattern: "^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$",
        max_length: MAX_REPOSITORY_LEN - 2,
    }
    /// An OCI tag.
    TagText: TagRule { pattern: "^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$", }
    /// A position in the event log, or a list offset: a whole number (empty: from the start).
    Position: PositionRule { pattern: "^[0-9]{0,19}$", }
    /// An `If-Match` value: a version ETag (`"3"`, `W/"3"` or `3`) or `*`.
    VersionTag: VersionTagRule { pattern: "^(?:\\*|(?:W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", }
    /// An upstream's remote URL: absolute http or https, with a host name or IPv4 address, an
    /// optional port, and no credentials or fragment.
    RemoteUrlText: RemoteUrlRule {
        pattern: concat!(
            "^https?://",
            "(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\\.)*[a-zA-Z](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?",
            "|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
            "(?::[0-9]{1,4})?(?:[/?][!-\"$-~]*)?$"
        ),
    }
    /// A label: not blank, without control characters.
    Label: LabelRule {
        pattern: "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length: MAX_LABEL_LEN,
    }
    /// A description.
    Description: DescriptionRule { max_length: MAX_DESCRIPTION_LEN, }
    /// An upstream's user name.
    Username: UsernameRule { max_length: 255, }
    /// A secret as given, such as an upstream's password: any text, but text.
    SecretText: SecretRule {}
    /// An `Idempotency-Key`: 1 to 255 visible ASCII characters.
    IdempotencyKey: IdempotencyKeyRule { pattern: "^[!-~]{1,255}$", }
}

/// A whole number the spec bounds to `MIN..=MAX`; the handler checks the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count<const MIN: u32, const MAX: u32>(pub u32);

impl<const MIN: u32, const MAX: u32> Type for Count<MIN, MAX> {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        u32::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = match u32::schema_ref() {
            MetaSchemaRef::Inline(schema) => *schema,
            MetaSchemaRef::Reference(_) => MetaSchema::new("integer"),
        };
        schema.minimum = Some(f64::from(MIN));
        schema.maximum = Some(f64::from(MAX));
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<const MIN: u32, const MAX: u32> ParseFromParameter for Count<MIN, MAX> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        u32::parse_from_parameter(value)
            .map(Self)
            .map_err(|e| e.propagate())
    }
}

impl<const MIN: u32, const MAX: u32> ParseFromJSON for Count<MIN, MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        u32::parse_from_json(value)
            .map(Self)
            .map_err(|e| e.propagate())
    }
}

impl<const MIN: u32, const MAX: u32> ToJSON for Count<MIN, MAX> {
    fn to_json(&self) -> Option<Value> {
        self.0.to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ResourceName;

    /// The pattern and `ResourceName::parse` agree on every name of a small alphabet up to four
    /// characters long, and on the examples of the naming rule.
    #[test]
    fn the_pattern_states_the_naming_rule() {
        let pattern =
            regex::Regex::new(NameRule::PATTERN.expect("a pattern")).expect("a valid pattern");
        let alphabet = ['a', 'b', '1', '.', '_', '-', 'A', '/'];
        let mut names = vec![String::new()];
        let mut longest = names.clone();
        for _ in 0..4 {
            longest = longest
                .iter()
                .flat_map(|n| alphabet.iter().map(move |c| format!("{n}{c}")))
                .collect();
            names.extend(longest.iter().cloned());
        }
        for name in names
            .iter()
            .map(String::as_str)
            .chain(["a__b", "a---b", "a___b"])
        {
            assert_eq!(
                pattern.is_match(name),
                ResourceName::parse(name).is_ok(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn urls_that_fit_the_pattern_are_urls_an_upstream_accepts() {
        let pattern = regex::Regex::new(RemoteUrlRule::PATTERN.expect("a pattern")).unwrap();
        for url in [
            "http://127.0.0.1:5000",
            "https://charts.example.com/stable",
            "http://a",
            "http://Registry-1.example?x=1",
            "https://255.255.255.255/v2/",
        ] {
            assert!(pattern.is_match(url), "{url}");
            assert!(crate::domain::RemoteUrl::parse(url).is_ok(), "{url}");
        }
        for url in [
            "ftp://a",
            "http://u:p@a",
            "http://a#f",
            "http://1.2.3.999",
            "http://",
        ] {
            assert!(!pattern.is_match(url), "{url}");
        }
    }

    #[test]
    fn text_is_read_only_from_json_strings() {
        assert_eq!(
            Label::parse_from_json(Some(Value::String("prod".into()))).ok(),
            Some(Label::from("prod"))
        );
        assert!(Label::parse_from_json(Some(Value::Bool(true))).is_err());
        assert!(Description::parse_from_json(Some(serde_json::json!(1.5))).is_err());
    }
}
