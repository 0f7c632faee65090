//! Cutover's search attributes (`CutoverService`, `CutoverEnvironment`, `CutoverVersion`),
//! registered on the namespace when missing, so a worker pointed at a fresh cluster works
//! without a manual `temporal operator search-attribute create`.

use std::collections::HashMap;

use temporalio_client::{Client, tonic};
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};

/// Adds whichever of Cutover's search attributes `namespace` lacks. Returns the names added
/// (none when all were there).
///
/// # Errors
///
/// The server's refusal, e.g. where the operator API is not allowed (Temporal Cloud: create
/// them in the namespace's settings instead).
pub async fn ensure_search_attributes(
    client: &Client,
    namespace: &str,
) -> Result<Vec<String>, tonic::Status> {
    let mut operator = client.connection().operator_service();
    let listed = operator
        .list_search_attributes(tonic::Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await?
        .into_inner();
    let missing: Vec<String> = cutover_workflows::search_attributes::ALL
        .iter()
        .filter(|name| !listed.custom_attributes.contains_key(**name))
        .map(|name| (*name).to_owned())
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let search_attributes: HashMap<String, i32> = missing
        .iter()
        .map(|name| (name.clone(), IndexedValueType::Keyword as i32))
        .collect();
    operator
        .add_search_attributes(tonic::Request::new(AddSearchAttributesRequest {
            search_attributes,
            namespace: namespace.to_owned(),
        }))
        .await?;
    Ok(missing)
}
