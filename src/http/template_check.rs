//! Checking a template send against the catalogue before it is queued (used by every send:
//! `POST /api/templates/{id}/send` and `type: template` on a conversation's messages).

use switchboard_domain::message::OutboundContent;
use switchboard_domain::template::{has_components, ParameterError, TemplateDefinition};
use switchboard_projections::templates::{self, TemplateView};

use crate::http::{ApiError, AppState};

/// 422 `invalid_template_parameters`, naming the variable.
pub(super) fn invalid_parameters(error: ParameterError) -> ApiError {
    ApiError::Unprocessable {
        code: "invalid_template_parameters",
        message: error.to_string(),
    }
}

/// Checks a template send against the catalogue before it is queued: the template must be
/// approved in that language, and its parameters must fit; fills in the text the customer
/// will read. A template known only from a status webhook (no components yet) is checked for
/// approval only.
///
/// The catalogue is a read model: a template paused a moment ago may still pass here, and
/// Meta then refuses the send (132015), which the message records as failed.
pub(super) async fn check_template(
    state: &AppState,
    content: &mut OutboundContent,
) -> Result<(), ApiError> {
    let OutboundContent::Template {
        name,
        language,
        components,
        rendered,
    } = content
    else {
        return Ok(());
    };
    let found = templates::by_name(&state.database, name, language).await?;
    let Some(definition) = found
        .iter()
        .filter_map(TemplateView::definition)
        .find(TemplateDefinition::is_approved)
    else {
        let status = found.first().and_then(|t| t.status.clone());
        return Err(ApiError::Unprocessable {
            code: "template_not_approved",
            message: match status {
                Some(status) => format!("template {name} in {language} is {status}, not APPROVED"),
                None => format!("no template {name} in {language} in the catalogue"),
            },
        });
    };
    *rendered = if has_components(&definition) {
        Some(
            definition
                .check_send(components)
                .map_err(invalid_parameters)?,
        )
    } else {
        None
    };
    Ok(())
}
