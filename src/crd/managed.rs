//! What every AWS-backed kind shares in its API, written once:
//!
//! - in the spec, the fields that say what the operator may do with the AWS resource (`tags`,
//!   `deletionPolicy`, `managementPolicy`, `adoptArn`), where it lives (`accountRef`, `region`), the
//!   ConfigMap it exports the resource's coordinates to (`export`, [`super::export`]), the CEL rules that tie `adoptArn` to the
//!   management policy and make it immutable ([`adopt_arn_rules`]), and [`ManagedSpec::policies`], the
//!   driver's view of them;
//! - in the status, the fields that report the resource (ARN, ID, AWS times, observed generation, managed
//!   tag keys, conditions as a list-map keyed on `type`: [`conditions_by_type`]), and the write-ahead
//!   record of a create sent but not yet answered ([`CreateAttempt`]).
//!
//! A kind declares its spec with [`managed_spec!`] and its status with [`managed_status!`]: each appends
//! the shared fields to the kind's own, so the Rust field paths and the schema stay flat (`spec.adoptArn`,
//! `status.arn`) exactly as if every field were written out in each kind.

use super::schema::for_kubernetes;
use super::{DeletionPolicy, ManagementPolicy};
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A create the operator is about to send, or sent without learning its result, recorded in status
/// before the create call (`status.createAttempt`). Creates take no idempotency token: while a record is
/// there and no ARN replaces it, the operator first looks for a resource carrying the object's ownership
/// tag before creating again (a crash, a lost answer, a timeout or a deposed leader may have left one).
/// An object without a record never had a create sent, so its first create needs no lookup. After a create
/// that got no answer, AWS may still carry it out later: the record then stays beside the ARN until a
/// lookup one resync period after the attempt, which deletes any copy it finds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = for_kubernetes)]
pub struct CreateAttempt {
    /// Random ID of the attempt, new for every create sent.
    pub id: String,
    /// When the attempt was recorded, just before its create call (RFC 3339).
    pub started_at: String,
    /// The AWS name the create sent, where the lookup can search by name (a named ChatRoom): the search
    /// looks for this name, not the spec's current one, which may have changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What the spec says about the AWS resource's life, common to every kind.
#[derive(Clone, Debug, Default)]
pub struct Policies {
    pub deletion: DeletionPolicy,
    pub management: ManagementPolicy,
    pub adopt_arn: Option<String>,
    /// The user's tags (without the ownership tags).
    pub tags: BTreeMap<String, String>,
}

/// A spec declared with [`managed_spec!`].
pub trait ManagedSpec {
    fn policies(&self) -> Policies;
    /// The name of the ChatAccount the resource lives in (`None`: the operator's own account).
    fn account_ref(&self) -> Option<&str>;
    /// The region the spec names (`None`: the account's default, else the operator's).
    fn region(&self) -> Option<&str>;
    /// The ConfigMap the spec asks the resource's coordinates to be exported to.
    fn export(&self) -> Option<&super::Export>;
}

/// Container transform of a managed spec: the CEL rules on `adoptArn`, `accountRef` and `region`, which
/// span fields (the management policy) and versions (`oldSelf`), so they live on the spec object rather
/// than on the field. A resource lives in one account and region for good: moving it means a new object,
/// so neither may be added, changed or removed after creation (a field-level rule would miss adding and
/// removing, which move the resource to the default just as surely).
pub fn managed_spec_rules(schema: &mut Schema) {
    let rules = json!([
        {
            "rule": "has(self.accountRef) == has(oldSelf.accountRef) && (!has(self.accountRef) || self.accountRef.name == oldSelf.accountRef.name)",
            "message": "spec.accountRef cannot be added, changed or removed after creation: a resource in another account is a new object",
        },
        {
            "rule": "has(self.region) == has(oldSelf.region) && (!has(self.region) || self.region == oldSelf.region)",
            "message": "spec.region cannot be added, changed or removed after creation: a resource in another region is a new object",
        },
        {
            "rule": "self.managementPolicy != 'ObserveOnly' || has(self.adoptArn)",
            "message": "spec.adoptArn is required when spec.managementPolicy is ObserveOnly",
        },
        {
            "rule": "!has(self.adoptArn) || has(oldSelf.adoptArn)",
            "message": "spec.adoptArn cannot be added after creation",
        },
        {
            "rule": "!has(oldSelf.adoptArn) || (has(self.adoptArn) && self.adoptArn == oldSelf.adoptArn)",
            "message": "spec.adoptArn is immutable once set (it cannot be changed or removed)",
        },
    ]);
    append_validations(schema, rules);
}

/// Container transform of a managed status: `conditions` is a list-map keyed on `type`, so two field
/// managers owning different conditions merge instead of replacing each other's.
pub fn conditions_by_type(schema: &mut Schema) {
    if let Some(Value::Object(conditions)) = schema
        .get_mut("properties")
        .and_then(|properties| properties.get_mut("conditions"))
    {
        conditions.insert("x-kubernetes-list-type".to_owned(), json!("map"));
        conditions.insert("x-kubernetes-list-map-keys".to_owned(), json!(["type"]));
    }
}

/// Appends CEL `rules` to a schema's `x-kubernetes-validations`.
pub(super) fn append_validations(schema: &mut Schema, rules: Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let validations = object
        .entry("x-kubernetes-validations")
        .or_insert_with(|| json!([]));
    if let (Value::Array(existing), Value::Array(rules)) = (validations, rules) {
        existing.extend(rules);
    }
}

/// Declares a kind's spec: the kind's own fields, then `tags`, `deletionPolicy`, `managementPolicy`,
/// `adoptArn` (its ARN pattern given), `accountRef`, `region` and `export` (its schema function given: the
/// known keys differ per kind), plus [`ManagedSpec`]. The kind words the three policy fields'
/// descriptions for its resource (`kubectl explain` shows them).
macro_rules! managed_spec {
    (
        $(#[$meta:meta])*
        pub struct $spec:ident {
            $($fields:tt)*
        }
        adopt_arn_pattern = $pattern:path;
        deletion_policy_doc = $deletion_doc:tt;
        management_policy_doc = $management_doc:tt;
        adopt_arn_doc = $adopt_doc:tt;
        export_schema = $export_schema:tt;
    ) => {
        $(#[$meta])*
        #[schemars(transform = $crate::crd::managed::managed_spec_rules)]
        pub struct $spec {
            $($fields)*

            #[serde(default, skip_serializing_if = "crate::crd::Tags::is_empty")]
            #[schemars(schema_with = "crate::crd::schema::tags")]
            pub tags: $crate::crd::Tags,

            #[doc = $deletion_doc]
            #[serde(default)]
            pub deletion_policy: $crate::crd::DeletionPolicy,

            #[doc = $management_doc]
            #[serde(default)]
            pub management_policy: $crate::crd::ManagementPolicy,

            #[doc = $adopt_doc]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1, max = 128), pattern($pattern))]
            pub adopt_arn: Option<String>,

            /// The ChatAccount (cluster-scoped) whose AWS account the resource lives in; that account must
            /// select this namespace. Omitted: the operator's own AWS account (its own credentials). Cannot
            /// be added, changed or removed after creation.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub account_ref: Option<$crate::crd::AccountReference>,

            /// The AWS region the resource lives in (e.g. `eu-west-1`). Omitted: the account's
            /// defaultRegion, else the operator's region. Cannot be added, changed or removed after
            /// creation.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(length(min = 1, max = 32), pattern($crate::crd::patterns::REGION))]
            pub region: Option<String>,

            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(schema_with = $export_schema)]
            pub export: Option<$crate::crd::Export>,
        }

        impl $crate::crd::ManagedSpec for $spec {
            fn policies(&self) -> $crate::crd::Policies {
                $crate::crd::Policies {
                    deletion: self.deletion_policy,
                    management: self.management_policy,
                    adopt_arn: self.adopt_arn.clone(),
                    tags: self.tags.to_map(),
                }
            }

            fn account_ref(&self) -> Option<&str> {
                self.account_ref.as_ref().map(|account| account.name.as_str())
            }

            fn region(&self) -> Option<&str> {
                self.region.as_deref()
            }

            fn export(&self) -> Option<&$crate::crd::Export> {
                self.export.as_ref()
            }
        }
    };
}

/// Declares a status: the ARN, ID and AWS times of the resource (`$resource` names it in the
/// descriptions), the kind's own fields, then the observed generation, the managed tag keys and the
/// conditions. A CRD status also takes the [`conditions_by_type`] transform; the driver's
/// [`StatusDocument`](crate::controller::status::StatusDocument), the union of every kind's status, is
/// declared with it too.
macro_rules! managed_status {
    (
        $(#[$meta:meta])*
        pub struct $status:ident describing $resource:tt {
            $($fields:tt)*
        }
    ) => {
        $(#[$meta])*
        pub struct $status {
            #[doc = concat!("ARN of the AWS ", $resource, ".")]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub arn: Option<String>,

            #[doc = concat!("ID of the AWS ", $resource, " (the last part of its ARN).")]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub id: Option<String>,

            #[doc = concat!("When AWS created the ", $resource, " (RFC 3339, as AWS reported it).")]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub create_time: Option<String>,

            #[doc = concat!("When AWS last updated the ", $resource, " (RFC 3339, as AWS reported it).")]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub update_time: Option<String>,

            #[doc = concat!("The AWS region the ", $resource, " lives in (fixed once the operator first acts for the object).")]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub region: Option<String>,

            #[doc = concat!("The AWS account id the ", $resource, " lives in.")]
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub account_id: Option<String>,

            $($fields)*

            /// A create sent (or about to be) whose result is not recorded yet: the ARN replaces it once the
            /// create answers. While it is here without an ARN, the operator looks up the resources tagged
            /// as this object's before creating again or releasing the object. Beside an ARN, an earlier
            /// create got no answer and may still complete: one resync period after the attempt, a lookup
            /// deletes any copy and the record goes (a deletion waits for it).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub create_attempt: Option<$crate::crd::CreateAttempt>,

            /// The metadata.generation this status describes.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub observed_generation: Option<i64>,

            /// AWS tag keys the operator set on the resource (the spec's tags plus its ownership tags), so that
            /// a tag removed from the spec is removed in AWS while tags others added in AWS are left alone.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub managed_tag_keys: Vec<String>,

            /// Conditions Ready, Reconciling and Stalled (kstatus), one per type; with spec.export also
            /// Exported (whether the ConfigMap holds the current coordinates; not part of Ready).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub conditions: Vec<::k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
        }
    };
}

pub(crate) use managed_status;
