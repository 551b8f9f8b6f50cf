//! The `ChatAccount` kind: an AWS account (and the IAM role to reach it by) in which the operator may
//! manage IVS Chat resources, and which namespaces may put their ChatRooms and ChatLoggingConfigurations
//! there. Cluster-scoped, so that only whoever may write cluster-scoped objects (the platform team) maps
//! tenants to accounts: a tenant names an account in `spec.accountRef`, and the account decides whether
//! the tenant's namespace may use it (none may unless its `namespaceSelector` says so).

use super::patterns;
use super::schema::for_kubernetes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Desired state of an AWS account the operator may act in.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[allow(
    clippy::duplicated_attributes,
    reason = "each printcolumn(...) repeats `type_ = \"string\"`; they are separate columns, not duplicates"
)]
#[kube(
    group = "ivschat.dev",
    version = "v1alpha1",
    kind = "ChatAccount",
    status = "ChatAccountStatus",
    derive = "PartialEq",
    shortname = "chacc",
    category = "ivschat",
    doc = "ChatAccount is an AWS account in which the ivschat-operator may manage IVS Chat resources: the IAM \
        role it assumes there (from its own identity, with sts:AssumeRole), the default region, and which \
        namespaces may use the account. A ChatRoom or ChatLoggingConfiguration names it in spec.accountRef; \
        one in a namespace the account does not select is Stalled (AccountNotPermitted) and causes no AWS call.",
    printcolumn(
        name = "Account",
        type_ = "string",
        json_path = ".status.accountId",
        description = "The AWS account id the role resolves to"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the role can be assumed"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        description = "Reason of the Ready condition"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Role",
        type_ = "string",
        json_path = ".spec.roleArn",
        priority = 1,
        description = "The IAM role the operator assumes"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = for_kubernetes, transform = account_rules)]
pub struct ChatAccountSpec {
    /// ARN of the IAM role the operator assumes to act in the account
    /// (`arn:aws:iam::<12-digit account>:role/<name>`). Its trust policy must trust the operator's own
    /// role (and require the external ID, if one is set). The account is the one in this ARN.
    #[schemars(length(min = 20, max = 2048), pattern(patterns::ROLE_ARN))]
    pub role_arn: String,

    /// External ID to pass when assuming the role (the role's trust policy requires it with the
    /// `sts:ExternalId` condition): 2-1224 characters of letters, digits and `_+=,.@:/-`. Omitted: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 1224), pattern(patterns::EXTERNAL_ID))]
    pub external_id: Option<String>,

    /// How long each assumed-role session lasts, 900-43200 seconds (at most the role's maximum session
    /// duration; at most 3600 when the operator's own identity is itself an assumed role, as with IRSA).
    /// Sessions are renewed before they expire. Omitted: STS's default, 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 900, max = 43200))]
    pub session_duration_seconds: Option<i32>,

    /// The region of ChatRooms and ChatLoggingConfigurations that use this account and name no region.
    /// Omitted: the operator's own region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), pattern(patterns::REGION))]
    pub default_region: Option<String>,

    /// The IVS Chat and STS endpoint to call instead of AWS's (`http(s)://host[:port]`), for example the
    /// local emulator or a compatible endpoint. Omitted: the operator's own endpoint setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), pattern(patterns::ENDPOINT_URL))]
    pub endpoint_url: Option<String>,

    /// Calls per second the operator allows itself per IVS Chat operation in each region of this account,
    /// replacing the IVS Chat quota for the operations named (e.g. `CreateRoom: 2` when another client
    /// uses part of the account's quota). Omitted operations keep the operator's budget.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 17, "x-kubernetes-validations" = [{
        "rule": "self.all(op, op in ['CreateChatToken', 'CreateLoggingConfiguration', 'CreateRoom', \
            'DeleteLoggingConfiguration', 'DeleteMessage', 'DeleteRoom', 'DisconnectUser', \
            'GetLoggingConfiguration', 'GetRoom', 'ListLoggingConfigurations', 'ListRooms', \
            'ListTagsForResource', 'SendEvent', 'TagResource', 'UntagResource', \
            'UpdateLoggingConfiguration', 'UpdateRoom'] && self[op] > 0.0 && self[op] <= 1000.0)",
        "message": "spec.apiRateLimits keys must be IVS Chat operations (e.g. CreateRoom) and values in (0, 1000] calls per second",
    }]))]
    pub api_rate_limits: BTreeMap<String, f64>,

    /// Which namespaces may use this account: their ChatRooms and ChatLoggingConfigurations may name it in
    /// spec.accountRef. A label selector over namespaces (`matchLabels: {kubernetes.io/metadata.name:
    /// team-a}` selects one namespace by name; `{}` selects every namespace). Omitted: no namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// Container transform of the spec: the rules that span fields or versions. The account in the role ARN is
/// fixed (another account is another ChatAccount: the resources made through this one live in its account);
/// the namespace selector's expressions are checked as the API server checks its own label selectors
/// (a CRD's schema alone does not), so that a selector that could never match is refused at apply.
fn account_rules(schema: &mut schemars::Schema) {
    let rules = serde_json::json!([
        {
            "rule": "self.roleArn.split(':')[4] == oldSelf.roleArn.split(':')[4]",
            "message": "spec.roleArn cannot move to another AWS account: resources made through this ChatAccount live in its account (make a new ChatAccount instead)",
        },
        {
            "rule": "!has(self.namespaceSelector) || !has(self.namespaceSelector.matchExpressions) || self.namespaceSelector.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",
            "message": "spec.namespaceSelector.matchExpressions operators must be In, NotIn, Exists or DoesNotExist",
        },
        {
            "rule": "!has(self.namespaceSelector) || !has(self.namespaceSelector.matchExpressions) || self.namespaceSelector.matchExpressions.all(e, (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",
            "message": "spec.namespaceSelector.matchExpressions need values with In and NotIn, and none with Exists and DoesNotExist",
        },
    ]);
    super::managed::append_validations(schema, rules);
}

/// Observed state of the account: whether its role can be assumed (kstatus conditions Ready, Stalled).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = for_kubernetes, transform = super::managed::conditions_by_type)]
pub struct ChatAccountStatus {
    /// The AWS account id the assumed role belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,

    /// The assumed-role session's ARN (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumed_role_arn: Option<String>,

    /// When the role was last assumed successfully (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_assumed: Option<String>,

    /// When the current session expires (RFC 3339); the operator renews it before then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_expiration: Option<String>,

    /// The last error assuming the role, as STS gave it (empty once it succeeds again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,

    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Conditions Ready, Reconciling and Stalled (kstatus), one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl ChatAccountSpec {
    /// The account id in the role ARN (its fifth `:`-separated field).
    pub fn account_id(&self) -> Option<&str> {
        account_of_arn(&self.role_arn)
    }
}

/// The account id of an ARN (`arn:partition:service:region:account:resource`), if it has one.
pub fn account_of_arn(arn: &str) -> Option<&str> {
    let account = arn.split(':').nth(4)?;
    (!account.is_empty()).then_some(account)
}

/// The region of an ARN, if it has one.
pub fn region_of_arn(arn: &str) -> Option<&str> {
    let region = arn.split(':').nth(3)?;
    (!region.is_empty()).then_some(region)
}

/// A ChatRoom's or ChatLoggingConfiguration's reference to the [`ChatAccount`] it lives in.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = for_kubernetes)]
pub struct AccountReference {
    /// Name of the ChatAccount (cluster-scoped). The account must select this object's namespace.
    #[schemars(length(min = 1, max = 253), pattern(patterns::OBJECT_NAME))]
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_and_region_come_from_their_arn_fields() {
        let role = ChatAccountSpec {
            role_arn: "arn:aws:iam::111122223333:role/ivschat".into(),
            ..ChatAccountSpec::default()
        };
        assert_eq!(role.account_id(), Some("111122223333"));
        let room = "arn:aws:ivschat:eu-west-1:444455556666:room/abc";
        assert_eq!(account_of_arn(room), Some("444455556666"));
        assert_eq!(region_of_arn(room), Some("eu-west-1"));
        assert_eq!(region_of_arn(&role.role_arn), None, "IAM is global");
        assert_eq!(account_of_arn("not-an-arn"), None);
    }
}
