//! `Timestamp`: a time in a query parameter, documented as RFC 3339 `date-time` and parsed
//! leniently, because common clients send ISO 8601 variants (a space instead of `T`, or an
//! offset without a colon, as `+0000`).

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromParameter, ParseResult, Type};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time from a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// Parses RFC 3339, also accepting a space for `T` and an offset written `+hhmm`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if let Ok(time) = OffsetDateTime::parse(value, &Rfc3339) {
            return Some(Self(time));
        }
        let mut text = value.replacen(' ', "T", 1);
        let bytes = text.as_bytes();
        let n = bytes.len();
        if n > 5
            && matches!(bytes[n - 5], b'+' | b'-')
            && bytes[n - 4..].iter().all(u8::is_ascii_digit)
        {
            text.insert(n - 2, ':');
        }
        OffsetDateTime::parse(&text, &Rfc3339).ok().map(Self)
    }
}

impl Type for Timestamp {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date-time".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date-time")))
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

impl ParseFromParameter for Timestamp {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Self::parse(value).ok_or_else(|| {
            ParseError::custom(format!(
                "{value:?} is not a time; use RFC 3339, such as 2026-11-26T21:28:14Z"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3339_and_its_common_variants_parse_to_the_same_time() {
        let expected = Timestamp::parse("2026-11-26T21:28:14.5Z").unwrap();
        for variant in [
            "2026-11-26T21:28:14.500+00:00",
            "2026-11-26 21:28:14.5Z",
            "2026-11-26T21:28:14.500000+0000",
            "2026-11-26T22:28:14.5+0100",
        ] {
            assert_eq!(Timestamp::parse(variant), Some(expected), "{variant}");
        }
        assert_eq!(Timestamp::parse("yesterday"), None);
    }
}
