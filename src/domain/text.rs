//! Free-text values: descriptions and labels, with their limits.

use serde::{Deserialize, Serialize};

/// The longest description Berth keeps.
pub const MAX_DESCRIPTION_LEN: usize = 1024;
/// The most labels one resource may carry.
pub const MAX_LABELS: usize = 50;
/// The longest label.
pub const MAX_LABEL_LEN: usize = 128;

/// Why a description or label was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Over [`MAX_DESCRIPTION_LEN`] characters.
    #[error("must be at most {MAX_DESCRIPTION_LEN} characters (it has {0})")]
    DescriptionTooLong(usize),
    /// Over [`MAX_LABELS`] labels.
    #[error("must hold at most {MAX_LABELS} labels (it has {0})")]
    TooManyLabels(usize),
    /// An empty or blank label.
    #[error("must not contain an empty label")]
    EmptyLabel,
    /// A label over [`MAX_LABEL_LEN`] characters.
    #[error("label {0:?} is longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong(String),
    /// A label with a control character.
    #[error("label {0:?} contains a control character")]
    LabelControl(String),
}

/// An optional description; blank text means none.
pub fn description(value: Option<&str>) -> Result<Option<String>, TextError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let len = text.chars().count();
    if len > MAX_DESCRIPTION_LEN {
        return Err(TextError::DescriptionTooLong(len));
    }
    Ok(Some(text.to_owned()))
}

/// A resource's labels: trimmed, each checked, duplicates dropped, order kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(Vec<String>);

impl Labels {
    /// Checks and normalises a list of labels.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self, TextError> {
        let mut labels: Vec<String> = Vec::with_capacity(values.len());
        for value in values {
            let label = value.as_ref().trim();
            if label.is_empty() {
                return Err(TextError::EmptyLabel);
            }
            if label.chars().count() > MAX_LABEL_LEN {
                return Err(TextError::LabelTooLong(label.to_owned()));
            }
            if label.chars().any(char::is_control) {
                return Err(TextError::LabelControl(label.to_owned()));
            }
            if !labels.iter().any(|l| l == label) {
                labels.push(label.to_owned());
            }
        }
        if labels.len() > MAX_LABELS {
            return Err(TextError::TooManyLabels(labels.len()));
        }
        Ok(Self(labels))
    }

    /// The labels, in order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_and_deduplicated_in_order() {
        let labels = Labels::parse(&[" prod", "team-a", "prod "]).unwrap();
        assert_eq!(labels.as_slice(), ["prod", "team-a"]);
    }

    #[test]
    fn bad_labels_and_descriptions_are_refused_with_the_rule() {
        assert_eq!(Labels::parse(&[" "]), Err(TextError::EmptyLabel));
        assert!(matches!(
            Labels::parse(&["a\nb"]),
            Err(TextError::LabelControl(_))
        ));
        let many: Vec<String> = (0..51).map(|i| format!("l{i}")).collect();
        assert_eq!(Labels::parse(&many), Err(TextError::TooManyLabels(51)));
        assert_eq!(description(Some("   ")), Ok(None));
        assert_eq!(
            description(Some(&"x".repeat(1025))),
            Err(TextError::DescriptionTooLong(1025))
        );
    }
}
