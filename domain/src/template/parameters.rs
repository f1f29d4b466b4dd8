//! Checking a template send's parameters against the template before Meta sees them, and the
//! text the customer will read.
//!
//! Meta refuses a wrong send only after the fact (132000 count mismatch, 132005 text too long,
//! 132012 format mismatch, 132018 bad characters); checking here gives the agent a 422 naming
//! the variable while nothing is queued yet.

use serde_json::Value;

use super::definition::{button_parameter, component, placeholders, ParameterFormat};
use super::TemplateDefinition;

/// The longest header once its variables are filled (Meta: 60 characters).
pub const MAX_HEADER_CHARS: usize = 60;
/// The longest body once its variables are filled (Meta: 1,024 characters, 132005).
pub const MAX_BODY_CHARS: usize = 1024;
/// The longest URL suffix of a dynamic URL button.
pub const MAX_URL_SUFFIX_CHARS: usize = 2000;
/// The longest coupon code of a copy-code button (Meta: 15 characters).
pub const MAX_COUPON_CHARS: usize = 15;
/// The longest quick-reply button payload.
pub const MAX_PAYLOAD_CHARS: usize = 1000;

/// A parameter that does not fit the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ParameterError {
    /// The variable (`body {{2}}`, `body {{customer_name}}`, `header`, `button[1]`, …).
    pub variable: String,
    /// What is wrong.
    pub reason: String,
}

fn wrong(variable: impl Into<String>, reason: impl Into<String>) -> ParameterError {
    ParameterError {
        variable: variable.into(),
        reason: reason.into(),
    }
}

/// The parameters of a send, by component.
#[derive(Default)]
struct Sent<'a> {
    header: Option<&'a [Value]>,
    body: Option<&'a [Value]>,
    /// `(index, sub_type, parameters)`.
    buttons: Vec<(usize, String, &'a [Value])>,
}

fn parameters(component: &Value) -> &[Value] {
    component
        .get("parameters")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn sent(components: &[Value]) -> Result<Sent<'_>, ParameterError> {
    let mut sent = Sent::default();
    for (i, c) in components.iter().enumerate() {
        let kind = c.get("type").and_then(Value::as_str).unwrap_or("");
        match kind.to_ascii_lowercase().as_str() {
            "header" if sent.header.is_none() => sent.header = Some(parameters(c)),
            "body" if sent.body.is_none() => sent.body = Some(parameters(c)),
            "header" | "body" => return Err(wrong(kind, "given twice")),
            "button" => {
                let index = match c.get("index") {
                    Some(Value::String(s)) => s.parse::<usize>().ok(),
                    Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
                    _ => None,
                }
                .ok_or_else(|| wrong(format!("components[{i}]"), "a button needs its index"))?;
                let sub_type = c.get("sub_type").and_then(Value::as_str).unwrap_or("");
                if sent.buttons.iter().any(|(j, _, _)| *j == index) {
                    return Err(wrong(format!("button[{index}]"), "given twice"));
                }
                sent.buttons
                    .push((index, sub_type.to_ascii_lowercase(), parameters(c)));
            }
            _ => {
                return Err(wrong(
                    format!("components[{i}]"),
                    format!("unknown component type {kind:?} (header, body or button)"),
                ))
            }
        }
    }
    Ok(sent)
}

/// A text parameter's value, checked as Meta does (132018: no new lines or tabs, at most four
/// spaces in a row).
fn text_value(variable: &str, parameter: &Value) -> Result<String, ParameterError> {
    let kind = parameter.get("type").and_then(Value::as_str).unwrap_or("");
    let value = match kind {
        "text" => parameter
            .get("text")
            .and_then(Value::as_str)
            .map(str::to_owned),
        "currency" | "date_time" => parameter
            .get(kind)
            .and_then(|v| v.get("fallback_value"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => {
            return Err(wrong(
                variable,
                format!("type {kind:?}: expected text, currency or date_time"),
            ))
        }
    }
    .ok_or_else(|| wrong(variable, format!("a {kind} parameter needs its value")))?;
    if kind == "currency" {
        let currency = &parameter["currency"];
        let code_ok = currency
            .get("code")
            .and_then(Value::as_str)
            .is_some_and(|c| c.len() == 3 && c.chars().all(|c| c.is_ascii_uppercase()));
        if !code_ok
            || currency
                .get("amount_1000")
                .and_then(Value::as_i64)
                .is_none()
        {
            return Err(wrong(
                variable,
                "a currency needs fallback_value, a three-letter code and amount_1000",
            ));
        }
    }
    if value.trim().is_empty() {
        return Err(wrong(variable, "must not be empty"));
    }
    if value.contains(['\n', '\t']) || value.contains("     ") {
        return Err(wrong(
            variable,
            "no new lines, tabs or more than four spaces in a row (Meta's rule)",
        ));
    }
    Ok(value)
}

/// Fills `text`'s variables from `parameters` (positional or named), naming the first missing,
/// extra or wrong one.
fn fill(
    place: &str,
    text: &str,
    format: ParameterFormat,
    parameters: &[Value],
) -> Result<String, ParameterError> {
    let declared = placeholders(text);
    let mut values: Vec<(String, String)> = Vec::new();
    match format {
        ParameterFormat::Positional => {
            for (i, parameter) in parameters.iter().enumerate() {
                let variable = format!("{place} {{{{{}}}}}", i + 1);
                if i >= declared.len() {
                    return Err(wrong(
                        variable,
                        format!(
                            "extra: the template's {place} has {} variables",
                            declared.len()
                        ),
                    ));
                }
                values.push((declared[i].clone(), text_value(&variable, parameter)?));
            }
            if let Some(missing) = declared.get(parameters.len()) {
                return Err(wrong(format!("{place} {{{{{missing}}}}}"), "missing"));
            }
        }
        ParameterFormat::Named => {
            for parameter in parameters {
                let Some(name) = parameter.get("parameter_name").and_then(Value::as_str) else {
                    return Err(wrong(
                        place,
                        "every parameter of a named template needs parameter_name",
                    ));
                };
                let variable = format!("{place} {{{{{name}}}}}");
                if !declared.iter().any(|d| d == name) {
                    return Err(wrong(variable, "extra: the template has no such variable"));
                }
                if values.iter().any(|(n, _)| n == name) {
                    return Err(wrong(variable, "given twice"));
                }
                values.push((name.to_owned(), text_value(&variable, parameter)?));
            }
            if let Some(missing) = declared
                .iter()
                .find(|d| !values.iter().any(|(n, _)| n == *d))
            {
                return Err(wrong(format!("{place} {{{{{missing}}}}}"), "missing"));
            }
        }
    }
    Ok(render(text, &values))
}

/// `text` with every `{{name}}` replaced by its value.
fn render(text: &str, values: &[(String, String)]) -> String {
    let values: Vec<(&str, &str)> = values
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    crate::quick_reply::render(text, &values)
}

fn too_long(variable: &str, text: &str, max: usize) -> Result<(), ParameterError> {
    let length = text.chars().count();
    if length > max {
        return Err(wrong(
            variable,
            format!("at most {max} characters once filled ({length})"),
        ));
    }
    Ok(())
}

impl TemplateDefinition {
    /// Checks a send's `components` (Meta's send shape) against this template and returns the
    /// text the customer will read (header, body and footer, variables filled).
    ///
    /// # Errors
    /// The first missing, extra or malformed parameter.
    pub fn check_send(&self, components: &[Value]) -> Result<String, ParameterError> {
        let sent = sent(components)?;
        let mut lines = Vec::new();
        match (self.header_format().as_deref(), sent.header) {
            (None, Some(p)) if !p.is_empty() => {
                return Err(wrong("header", "the template has no header"))
            }
            (None, _) => {}
            (Some("TEXT"), given) => {
                let text = self.text("HEADER").unwrap_or("");
                let filled = fill("header", text, self.parameter_format, given.unwrap_or(&[]))?;
                too_long("header", &filled, MAX_HEADER_CHARS)?;
                lines.push(filled);
            }
            (Some(media), given) => media_header(media, given.unwrap_or(&[]))?,
        }
        let body = self.text("BODY").unwrap_or("");
        let filled = fill(
            "body",
            body,
            self.parameter_format,
            sent.body.unwrap_or(&[]),
        )?;
        too_long("body", &filled, MAX_BODY_CHARS)?;
        lines.push(filled);
        if let Some(footer) = self.text("FOOTER") {
            lines.push(footer.to_owned());
        }
        self.check_buttons(&sent.buttons)?;
        Ok(lines.join("\n"))
    }

    fn check_buttons(&self, sent: &[(usize, String, &[Value])]) -> Result<(), ParameterError> {
        let buttons = self.buttons();
        for (index, sub_type, parameters) in sent {
            let variable = format!("button[{index}]");
            let Some(button) = buttons.get(*index) else {
                return Err(wrong(
                    variable,
                    format!("the template has {} buttons", buttons.len()),
                ));
            };
            let declared = button["type"].as_str().unwrap_or("").to_ascii_lowercase();
            let expected = match declared.as_str() {
                "otp" => "url",
                other => other,
            };
            if sub_type != expected {
                return Err(wrong(
                    variable,
                    format!("sub_type {sub_type:?}: the button is {expected}"),
                ));
            }
            let (kind, max) = match button_parameter(button) {
                Some("url_suffix") => ("text", MAX_URL_SUFFIX_CHARS),
                Some(_) => ("coupon_code", MAX_COUPON_CHARS),
                None if expected == "quick_reply" => ("payload", MAX_PAYLOAD_CHARS),
                None if parameters.is_empty() => continue,
                None => return Err(wrong(variable, "this button takes no parameter")),
            };
            let [parameter] = parameters else {
                return Err(wrong(variable, format!("exactly one {kind} parameter")));
            };
            let value = parameter
                .get(kind)
                .and_then(Value::as_str)
                .filter(|_| parameter.get("type").and_then(Value::as_str) == Some(kind))
                .ok_or_else(|| wrong(&variable, format!("expected a {kind} parameter")))?;
            if value.trim().is_empty() {
                return Err(wrong(variable, "must not be empty"));
            }
            too_long(&variable, value, max)?;
        }
        for (index, button) in buttons.iter().enumerate() {
            if button_parameter(button).is_some() && !sent.iter().any(|(i, _, _)| *i == index) {
                return Err(wrong(format!("button[{index}]"), "missing"));
            }
        }
        Ok(())
    }
}

/// A media or location header: one parameter of the header's type, by id or link.
fn media_header(format: &str, parameters: &[Value]) -> Result<(), ParameterError> {
    let kind = format.to_ascii_lowercase();
    let [parameter] = parameters else {
        return Err(wrong(
            "header",
            format!("the template's header needs exactly one {kind} parameter"),
        ));
    };
    if parameter.get("type").and_then(Value::as_str) != Some(kind.as_str()) {
        return Err(wrong("header", format!("expected a {kind} parameter")));
    }
    let object = &parameter[kind.as_str()];
    let given = if kind == "location" {
        object.get("latitude").is_some_and(Value::is_number)
            && object.get("longitude").is_some_and(Value::is_number)
    } else {
        ["id", "link"].iter().any(|key| {
            object
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.trim().is_empty())
        })
    };
    if !given {
        let needs = if kind == "location" {
            "latitude and longitude"
        } else {
            "an id or a link"
        };
        return Err(wrong("header", format!("the {kind} needs {needs}")));
    }
    Ok(())
}

fn parameter_value(variable: &str, value: &Value) -> Result<Value, ParameterError> {
    match value {
        Value::String(text) => Ok(serde_json::json!({"type": "text", "text": text})),
        Value::Object(object) if object.contains_key("type") => Ok(value.clone()),
        _ => Err(wrong(
            variable,
            "a text, or a {type: currency | date_time, …} object",
        )),
    }
}

impl TemplateDefinition {
    /// Meta's send `components` from values by variable: `"1"`, `"2"` or names for the body,
    /// `"header.1"` (or `"header.<name>"`) for a text header, `"header"` for a media header
    /// (a link, or `{id | link}`), `"button.<index>"` for a button's URL suffix, coupon code or
    /// payload. Then check them with [`TemplateDefinition::check_send`].
    ///
    /// # Errors
    /// A variable the template lacks, one it needs that is missing, or a malformed value.
    pub fn send_components(
        &self,
        values: &serde_json::Map<String, Value>,
    ) -> Result<Vec<Value>, ParameterError> {
        let mut used: Vec<String> = Vec::new();
        let mut components = Vec::new();
        let text_component = |place: &str, text: &str, prefix: &str, used: &mut Vec<String>| {
            let mut parameters = Vec::new();
            for name in placeholders(text) {
                let key = format!("{prefix}{name}");
                let variable = format!("{place} {{{{{name}}}}}");
                let Some(value) = values.get(&key) else {
                    return Err(wrong(variable, "missing"));
                };
                used.push(key);
                let mut parameter = parameter_value(&variable, value)?;
                if self.parameter_format == ParameterFormat::Named {
                    parameter["parameter_name"] = Value::String(name.clone());
                }
                parameters.push(parameter);
            }
            Ok((!parameters.is_empty())
                .then(|| serde_json::json!({"type": place, "parameters": parameters})))
        };
        match self.header_format().as_deref() {
            Some("TEXT") => {
                let text = self.text("HEADER").unwrap_or("");
                components.extend(text_component("header", text, "header.", &mut used)?);
            }
            Some(media) => {
                let kind = media.to_ascii_lowercase();
                let Some(value) = values.get("header") else {
                    return Err(wrong(
                        "header",
                        format!("missing: the template's header is a {kind}"),
                    ));
                };
                used.push("header".to_owned());
                let object = match value {
                    Value::String(link) => serde_json::json!({"link": link}),
                    Value::Object(_) => value.clone(),
                    _ => return Err(wrong("header", "a link, or {id | link}")),
                };
                components.push(serde_json::json!({"type": "header", "parameters": [{"type": kind, kind.clone(): object}]}));
            }
            None => {}
        }
        let body = self.text("BODY").unwrap_or("");
        components.extend(text_component("body", body, "", &mut used)?);
        for (index, button) in self.buttons().iter().enumerate() {
            let key = format!("button.{index}");
            let Some(value) = values.get(&key) else {
                if button_parameter(button).is_some() {
                    return Err(wrong(format!("button[{index}]"), "missing"));
                }
                continue;
            };
            used.push(key);
            let Some(value) = value.as_str() else {
                return Err(wrong(format!("button[{index}]"), "a text"));
            };
            let (sub_type, parameter) = match button_parameter(button) {
                Some("url_suffix") => ("url", serde_json::json!({"type": "text", "text": value})),
                Some(_) => (
                    "copy_code",
                    serde_json::json!({"type": "coupon_code", "coupon_code": value}),
                ),
                None => (
                    "quick_reply",
                    serde_json::json!({"type": "payload", "payload": value}),
                ),
            };
            components.push(serde_json::json!({"type": "button", "sub_type": sub_type, "index": index.to_string(), "parameters": [parameter]}));
        }
        if let Some(extra) = values.keys().find(|k| !used.contains(k)) {
            return Err(wrong(
                extra.clone(),
                "extra: the template has no such variable",
            ));
        }
        Ok(components)
    }
}

/// Whether the template's components declare anything (a catalogue entry known only from a
/// status webhook has none, and its sends cannot be checked here).
pub fn has_components(definition: &TemplateDefinition) -> bool {
    component(&definition.components, "BODY").is_some()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::template::definition::tests::order_shipped;

    fn check(components: Value) -> Result<String, String> {
        let components = components.as_array().cloned().unwrap_or_default();
        order_shipped()
            .check_send(&components)
            .map_err(|e| e.to_string())
    }

    fn text(t: &str) -> Value {
        json!({"type": "text", "text": t})
    }

    fn good_button() -> Value {
        json!({"type": "button", "sub_type": "url", "index": "1", "parameters": [text("4521")]})
    }

    #[test]
    fn a_complete_send_renders_what_the_customer_reads() {
        let rendered = check(json!([
            {"type": "header", "parameters": [text("#4521")]},
            {"type": "body", "parameters": [text("Sheena"), {"type": "currency", "currency": {"fallback_value": "$12.50", "code": "USD", "amount_1000": 12500}}]},
            good_button(),
        ]))
        .expect("valid");
        assert_eq!(
            rendered,
            "Order #4521\nHi Sheena, order $12.50 has shipped.\nReply STOP to opt out"
        );
    }

    #[test]
    fn missing_extra_and_malformed_variables_are_named() {
        let header = json!({"type": "header", "parameters": [text("#1")]});
        let body = |params: Vec<Value>| json!({"type": "body", "parameters": params});
        assert_eq!(
            check(json!([header, body(vec![text("Ana")]), good_button()])),
            Err("body {{2}}: missing".into())
        );
        assert_eq!(
            check(json!([
                header,
                body(vec![text("a"), text("b"), text("c")]),
                good_button()
            ])),
            Err("body {{3}}: extra: the template's body has 2 variables".into())
        );
        assert_eq!(
            check(json!([body(vec![text("a"), text("b")]), good_button()])),
            Err("header {{1}}: missing".into())
        );
        assert_eq!(
            check(json!([header, body(vec![text("a"), text("b")])])),
            Err("button[1]: missing".into())
        );
        assert!(check(json!([
            header,
            body(vec![text("a\nb"), text("b")]),
            good_button()
        ]))
        .unwrap_err()
        .starts_with("body {{1}}: no new lines"));
        assert!(check(json!([
            header,
            body(vec![text("a"), json!({"type": "image"})]),
            good_button()
        ]))
        .unwrap_err()
        .starts_with("body {{2}}: type \"image\""));
        let long = "x".repeat(MAX_BODY_CHARS);
        assert!(check(json!([
            header,
            body(vec![text(&long), text("b")]),
            good_button()
        ]))
        .unwrap_err()
        .starts_with("body: at most 1024 characters"));
        assert!(check(
            json!([header, body(vec![text("a"), text("b")]), good_button(),
            {"type": "button", "sub_type": "url", "index": "5", "parameters": [text("x")]}])
        )
        .unwrap_err()
        .starts_with("button[5]: the template has 2 buttons"));
    }

    #[test]
    fn named_templates_are_filled_by_name() {
        let mut template = order_shipped();
        template.parameter_format = ParameterFormat::Named;
        template.components =
            vec![json!({"type": "BODY", "text": "Hola {{customer_name}}, pedido {{order}}"})];
        let named = |name: &str, value: &str| json!({"type": "text", "parameter_name": name, "text": value});
        let send = |params: Vec<Value>| {
            template.check_send(&[json!({"type": "body", "parameters": params})])
        };
        assert_eq!(
            send(vec![named("order", "42"), named("customer_name", "Ana")]),
            Ok("Hola Ana, pedido 42".to_owned())
        );
        assert_eq!(
            send(vec![named("customer_name", "Ana")]).map_err(|e| e.variable),
            Err("body {{order}}".to_owned())
        );
        assert_eq!(
            send(vec![
                named("customer_name", "Ana"),
                named("order", "1"),
                named("nope", "x")
            ])
            .map_err(|e| e.variable),
            Err("body {{nope}}".to_owned())
        );
    }

    #[test]
    fn values_by_variable_become_metas_components() {
        let template = order_shipped();
        let values = |v: Value| v.as_object().cloned().unwrap_or_default();
        let components = template
            .send_components(&values(
                json!({"header.1": "#9", "1": "Ana", "2": "#9", "button.1": "9"}),
            ))
            .expect("complete");
        assert_eq!(
            template.check_send(&components),
            Ok("Order #9\nHi Ana, order #9 has shipped.\nReply STOP to opt out".to_owned())
        );
        let error = |v: Value| {
            template
                .send_components(&values(v))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            error(json!({"header.1": "#9", "2": "#9", "button.1": "9"})),
            Err("body {{1}}: missing".to_owned())
        );
        assert_eq!(
            error(json!({"header.1": "#9", "1": "a", "2": "#9", "button.1": "9", "3": "x"})),
            Err("3: extra: the template has no such variable".to_owned())
        );
    }

    #[test]
    fn a_media_header_needs_its_media() {
        let mut template = order_shipped();
        template.components[0] = json!({"type": "HEADER", "format": "IMAGE"});
        let body = json!({"type": "body", "parameters": [text("a"), text("b")]});
        let ok = template.check_send(&[
            json!({"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x/y.jpg"}}]}),
            body.clone(),
            good_button(),
        ]);
        assert_eq!(
            ok,
            Ok("Hi a, order b has shipped.\nReply STOP to opt out".to_owned())
        );
        let missing = template.check_send(&[body, good_button()]);
        assert_eq!(missing.map_err(|e| e.variable), Err("header".to_owned()));
    }
}
