//! What a template is: Meta's catalogue entry (name, language, category, status, components)
//! and the variables its components declare.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::WabaId;

/// How a template names its variables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParameterFormat {
    /// `{{1}}`, `{{2}}`, … filled in order.
    #[default]
    Positional,
    /// `{{customer_name}}`, filled by `parameter_name`.
    Named,
}

impl ParameterFormat {
    /// Meta's spelling (`POSITIONAL`, `NAMED`).
    pub fn meta_name(self) -> &'static str {
        match self {
            Self::Positional => "POSITIONAL",
            Self::Named => "NAMED",
        }
    }

    /// From Meta's spelling; positional when absent or unknown (Meta's default).
    pub fn from_meta(name: Option<&str>) -> Self {
        match name {
            Some(n) if n.eq_ignore_ascii_case("named") => Self::Named,
            _ => Self::Positional,
        }
    }
}

/// One translation of a template, as Meta's catalogue describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDefinition {
    /// The business account.
    pub waba_id: WabaId,
    /// Lower-case letters, digits and underscores.
    pub name: String,
    /// Language code (`en_US`, `es`, …).
    pub language: String,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    pub category: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, …
    pub status: String,
    /// Meta's reason for a rejection or pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Quality score (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// How variables are named.
    #[serde(default)]
    pub parameter_format: ParameterFormat,
    /// Meta's `components`, kept whole (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`, …).
    pub components: Vec<Value>,
}

/// A variable a template declares, and the example Meta was given for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// Where: `header`, `body`, or `button[<index>]`.
    pub component: String,
    /// `1`, `2`, … or the variable's name.
    pub name: String,
    /// What it takes: `text`, `image`, `video`, `document`, `location`, `url_suffix`,
    /// `coupon_code`, `payload`.
    pub kind: String,
    /// Meta's example value, when the template gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

/// The component of `components` of this `type` (Meta spells types in capitals when listing
/// and in lower case when sending).
pub(crate) fn component<'a>(components: &'a [Value], kind: &str) -> Option<&'a Value> {
    components.iter().find(|c| {
        c.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    })
}

/// The `{{…}}` placeholders of `text`, in order of first appearance, without repeats.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim().to_owned();
        if !name.is_empty() && !found.contains(&name) {
            found.push(name);
        }
        rest = &after[close + 2..];
    }
    found
}

fn text_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

impl TemplateDefinition {
    /// Whether Meta allows editing it (approved, rejected and paused templates).
    pub fn is_editable(&self) -> bool {
        ["APPROVED", "REJECTED", "PAUSED"].contains(&self.status.to_ascii_uppercase().as_str())
    }

    /// Whether it may be sent (Meta sends only approved templates).
    pub fn is_approved(&self) -> bool {
        self.status.eq_ignore_ascii_case("APPROVED")
    }

    /// The header's format (`TEXT`, `IMAGE`, `VIDEO`, `DOCUMENT`, `LOCATION`), if it has one.
    pub fn header_format(&self) -> Option<String> {
        component(&self.components, "HEADER")
            .map(|h| text_of(h, "format").unwrap_or("TEXT").to_ascii_uppercase())
    }

    /// The text of the component of `kind` (`HEADER`, `BODY`, `FOOTER`).
    pub fn text(&self, kind: &str) -> Option<&str> {
        component(&self.components, kind).and_then(|c| text_of(c, "text"))
    }

    /// The buttons, in order.
    pub fn buttons(&self) -> &[Value] {
        component(&self.components, "BUTTONS")
            .and_then(|b| b.get("buttons"))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// Every variable the template declares, header first, then body, then buttons.
    pub fn variables(&self) -> Vec<Variable> {
        let mut variables = Vec::new();
        match self.header_format().as_deref() {
            Some("TEXT") => {
                let examples = self.examples("HEADER", "header_text");
                for (i, name) in placeholders(self.text("HEADER").unwrap_or(""))
                    .iter()
                    .enumerate()
                {
                    variables.push(Variable {
                        component: "header".to_owned(),
                        name: name.clone(),
                        kind: "text".to_owned(),
                        example: examples.get(i).cloned(),
                    });
                }
            }
            Some(media) => variables.push(Variable {
                component: "header".to_owned(),
                name: media.to_ascii_lowercase(),
                kind: media.to_ascii_lowercase(),
                example: None,
            }),
            None => {}
        }
        let examples = self.examples("BODY", "body_text");
        for (i, name) in placeholders(self.text("BODY").unwrap_or(""))
            .iter()
            .enumerate()
        {
            variables.push(Variable {
                component: "body".to_owned(),
                name: name.clone(),
                kind: "text".to_owned(),
                example: examples.get(i).cloned(),
            });
        }
        for (index, button) in self.buttons().iter().enumerate() {
            if let Some(kind) = button_parameter(button) {
                variables.push(Variable {
                    component: format!("button[{index}]"),
                    name: "1".to_owned(),
                    kind: kind.to_owned(),
                    example: button
                        .get("example")
                        .and_then(|e| e.get(0).or(Some(e)))
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
        }
        variables
    }

    /// Meta's examples for a component's variables: positional `example.<key>` (a list, or a
    /// list of lists), or named `example.<key>_named_params` (`[{param_name, example}]`).
    fn examples(&self, kind: &str, key: &str) -> Vec<String> {
        let Some(example) = component(&self.components, kind).and_then(|c| c.get("example")) else {
            return Vec::new();
        };
        if let Some(named) = example
            .get(format!("{key}_named_params"))
            .and_then(Value::as_array)
        {
            return named
                .iter()
                .filter_map(|p| text_of(p, "example").map(str::to_owned))
                .collect();
        }
        let list = example.get(key).and_then(Value::as_array);
        let list = match list.and_then(|l| l.first()) {
            Some(Value::Array(inner)) => inner.as_slice(),
            _ => list.map_or(&[][..], Vec::as_slice),
        };
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

/// What a button takes when sent: a URL suffix (dynamic URL, one-time password), a coupon code,
/// or nothing.
pub(crate) fn button_parameter(button: &Value) -> Option<&'static str> {
    let kind = text_of(button, "type").unwrap_or("").to_ascii_uppercase();
    match kind.as_str() {
        "URL" if text_of(button, "url").is_some_and(|u| u.contains("{{")) => Some("url_suffix"),
        "OTP" => Some("url_suffix"),
        "COPY_CODE" => Some("coupon_code"),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn order_shipped() -> TemplateDefinition {
        TemplateDefinition {
            waba_id: WabaId::new("1"),
            name: "order_shipped".into(),
            language: "en_US".into(),
            category: "UTILITY".into(),
            status: "APPROVED".into(),
            reason: None,
            quality: None,
            parameter_format: ParameterFormat::Positional,
            components: vec![
                json!({"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["#4521"]}}),
                json!({"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped.", "example": {"body_text": [["Sheena", "#4521"]]}}),
                json!({"type": "FOOTER", "text": "Reply STOP to opt out"}),
                json!({"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop updates"},
                    {"type": "URL", "text": "Track", "url": "https://example.com/t/{{1}}", "example": ["https://example.com/t/4521"]}]}),
            ],
        }
    }

    #[test]
    fn variables_are_listed_with_their_examples() {
        let variables = order_shipped().variables();
        let summary: Vec<(String, String, String, Option<String>)> = variables
            .into_iter()
            .map(|v| (v.component, v.name, v.kind, v.example))
            .collect();
        assert_eq!(
            summary,
            [
                ("header", "1", "text", Some("#4521")),
                ("body", "1", "text", Some("Sheena")),
                ("body", "2", "text", Some("#4521")),
                (
                    "button[1]",
                    "1",
                    "url_suffix",
                    Some("https://example.com/t/4521")
                ),
            ]
            .map(|(a, b, c, d)| (
                a.to_owned(),
                b.to_owned(),
                c.to_owned(),
                d.map(str::to_owned)
            ))
        );
    }

    #[test]
    fn placeholders_keep_first_appearance_order_without_repeats() {
        assert_eq!(
            placeholders("{{name}} and {{ order }}, {{name}} {{"),
            ["name", "order"]
        );
        assert!(placeholders("no variables}}").is_empty());
    }
}
